"""A bad spec is refused with an error that names the field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_operator.api import Dataset, RolloutJob, SpecError, load_resource, parse_resource

GOOD_JOB = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "math-run1"},
    "spec": {
        "input": {"uri": "s3://bucket/tasks.jsonl"},
        "policy": {"baseURL": "http://vllm:8000/v1", "model": "qwen3-8b"},
        "sampling": {"numRepeats": 4, "params": {"temperature": 0.7, "top_p": 0.95}},
        "verifier": {"builtin": "math"},
        "output": {"uri": "s3://bucket/rollouts/run1/"},
    },
}


def with_spec(**changes: object) -> dict:
    body = {**GOOD_JOB, "spec": {**GOOD_JOB["spec"], **changes}}
    return body


def problems(body: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_resource(body)
    return info.value.problems


def test_good_spec_gets_defaults() -> None:
    job = parse_resource(GOOD_JOB)
    assert isinstance(job, RolloutJob)
    assert job.spec.sampling.num_repeats == 4
    assert job.spec.sampling.concurrency == 64
    assert job.spec.retry.max_attempts == 3
    assert job.spec.output.compression == "zstd"
    assert job.wire()["spec"]["policy"]["baseURL"] == "http://vllm:8000/v1"


def test_unknown_field_is_named() -> None:
    body = with_spec(sampling={"numRepeats": 2, "numRepeat": 3})
    assert problems(body) == ["spec.sampling.numRepeat: Extra inputs are not permitted"]


def test_out_of_range_is_named() -> None:
    body = with_spec(sampling={"numRepeats": 0}, parallelism=0)
    found = problems(body)
    assert any(p.startswith("spec.sampling.numRepeats:") for p in found)
    assert any(p.startswith("spec.parallelism:") for p in found)


def test_conflicting_verifier_fields() -> None:
    body = with_spec(verifier={"builtin": "math", "url": "http://v:8000"})
    assert problems(body) == [
        "spec.verifier: set exactly one of verifier.builtin, verifier.image and verifier.url"
    ]


def test_policy_needs_model_with_base_url() -> None:
    body = with_spec(policy={"baseURL": "http://vllm:8000/v1"})
    assert problems(body) == ["spec.policy: policy.model is required with policy.baseURL"]


def test_retry_budget_must_cover_timeout() -> None:
    body = with_spec(retry={"requestTimeoutSeconds": 100, "maxRetrySeconds": 10})
    assert "maxRetrySeconds" in problems(body)[0]


def test_unknown_kind() -> None:
    assert problems({"kind": "Pod"})[0].startswith("kind:")


def test_yaml_file_error_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("kind: RolloutJob\nspec:\n  input: {uri: x}\n")
    with pytest.raises(SpecError) as info:
        load_resource(path)
    assert str(path) in str(info.value)
    assert "spec.policy: Field required" in info.value.problems


def test_dataset_cross_field_rules() -> None:
    body = {
        "kind": "Dataset",
        "spec": {
            "sources": [{"rolloutJobRef": "a", "uri": "s3://b/"}],
            "kind": "sft",
            "pairing": {"minQualityDifference": 0.2},
            "format": "trl",
            "output": {"uri": "s3://b/ds/"},
        },
    }
    found = problems(body)
    assert "spec.sources[0]: set exactly one of rolloutJobRef and uri in each source" in found
    body["spec"]["sources"] = [{"rolloutJobRef": "a"}]
    assert problems(body) == ["spec: pairing applies only to kind dpo"]
    del body["spec"]["pairing"]
    assert isinstance(parse_resource(body), Dataset)

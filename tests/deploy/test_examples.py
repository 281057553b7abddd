"""manifests/examples: valid resources that follow the patterns users start from."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploykit import EXAMPLES, ROOT, Manifest

from gym_operator.api import Dataset, RolloutJob, parse_resource

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def load_all() -> list[tuple[Path, Manifest]]:
    return [
        (path, doc)
        for path in EXAMPLE_FILES
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


def custom_resources() -> list[tuple[Path, Manifest]]:
    return [(p, d) for p, d in load_all() if d["kind"] in ("RolloutJob", "Dataset")]


def by_name(kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for _, d in custom_resources() if d["kind"] == kind}


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused, as `kubectl apply` (strict field validation)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@functools.cache
def crd_validators() -> dict[str, jsonschema.Draft4Validator]:
    """One validator per CRD kind; Draft 4 has the OpenAPI 3.0 meaning of exclusiveMinimum."""
    validators = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
        group_version = f"{crd['spec']['group']}/{version['name']}"
        key = f"{group_version}/{crd['spec']['names']['kind']}"
        validators[key] = jsonschema.Draft4Validator(strict(version["schema"]["openAPIV3Schema"]))
    return validators


@pytest.mark.parametrize(
    ("path", "doc"),
    custom_resources(),
    ids=[f"{p.name}:{d['metadata']['name']}" for p, d in custom_resources()],
)
def test_example_parses_with_the_api_models(path: Path, doc: Manifest) -> None:
    resource = parse_resource(doc, str(path))
    assert resource.metadata.name == doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("path", "doc"),
    custom_resources(),
    ids=[f"{p.name}:{d['metadata']['name']}" for p, d in custom_resources()],
)
def test_example_validates_against_its_crd_schema(path: Path, doc: Manifest) -> None:
    validator = crd_validators()[f"{doc['apiVersion']}/{doc['kind']}"]
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, f"{path.name}: {errors}"


def test_crd_schema_check_refuses_a_misspelt_field() -> None:
    doc = copy.deepcopy(by_name("RolloutJob")["math-sft"])
    doc["spec"]["sampling"]["numRepeat"] = 2
    validator = crd_validators()["gymops.dev/v1alpha1/RolloutJob"]
    assert any("numRepeat" in e.message for e in validator.iter_errors(doc))


def test_sft_pattern() -> None:
    job = RolloutJob.model_validate(by_name("RolloutJob")["math-sft"])
    assert job.spec.sampling.concurrency == 20
    assert job.spec.sampling.params.temperature == 0.2
    assert job.spec.sampling.num_repeats == 1
    data = Dataset.model_validate(by_name("Dataset")["math-sft-trl"])
    assert data.spec.kind == "sft" and data.spec.filters.min_reward == 0.8
    assert data.spec.sources[0].rollout_job_ref == "math-sft"


def test_dpo_pattern() -> None:
    job = RolloutJob.model_validate(by_name("RolloutJob")["math-dpo"])
    assert 2 <= job.spec.sampling.num_repeats <= 4
    assert job.spec.sampling.params.temperature == 0.7
    pairs = [
        Dataset.model_validate(d) for d in by_name("Dataset").values() if d["spec"]["kind"] == "dpo"
    ]
    assert pairs
    for data in pairs:
        assert data.spec.sources[0].rollout_job_ref == "math-dpo"
        assert data.spec.pairing is not None
        assert data.spec.pairing.min_quality_difference >= 0.1


def test_rl_pattern() -> None:
    job = RolloutJob.model_validate(by_name("RolloutJob")["instructions-rl"])
    assert job.spec.sampling.concurrency == 10
    assert job.spec.sampling.params.temperature == 0.5
    assert job.spec.reward.mode == "continuous"
    data = Dataset.model_validate(by_name("Dataset")["instructions-rl-verl"])
    assert data.spec.kind == "rl"
    window = data.spec.filters.pass_rate
    assert window is not None and window.exclusive and (window.min, window.max) == (0.0, 1.0)


def test_one_dataset_per_export_format() -> None:
    formats = sorted(d["spec"]["format"] for d in by_name("Dataset").values())
    assert formats == sorted(["trl", "openrlhf", "verl", "nemo-rl", "nemo-gym"])


def test_datasets_refer_to_example_rolloutjobs() -> None:
    jobs = by_name("RolloutJob")
    for name, data in by_name("Dataset").items():
        refs = [s["rolloutJobRef"] for s in data["spec"]["sources"] if "rolloutJobRef" in s]
        assert refs and all(ref in jobs for ref in refs), name


def test_nemo_gym_resource_server_image_as_verifier() -> None:
    job = RolloutJob.model_validate(by_name("RolloutJob")["mcqa-nemo-gym"])
    assert job.spec.verifier.image and job.spec.verifier.builtin is None
    assert job.spec.verifier.port == 8000


def test_secret_template_matches_the_references() -> None:
    secrets = {d["metadata"]["name"]: d for _, d in load_all() if d["kind"] == "Secret"}
    for _, doc in custom_resources():
        spec = doc["spec"]
        ref = spec.get("policy", {}).get("apiKeySecretRef")
        if ref:
            assert ref["key"] in secrets[ref["name"]]["stringData"]
        creds = (spec.get("s3") or {}).get("credentialsSecretRef")
        if creds:
            assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(
                secrets[creds["name"]]["stringData"]
            )
    for secret in secrets.values():
        assert all(v.startswith("REPLACE-WITH-") for v in secret["stringData"].values())


def test_notes_point_at_existing_examples() -> None:
    notes = (ROOT / "charts" / "gym-operator" / "templates" / "NOTES.txt").read_text()
    for word in notes.split():
        if word.startswith("manifests/examples/") and word.endswith(".yaml"):
            assert (ROOT / word).exists(), word

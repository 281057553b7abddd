"""The CRDs' CEL rules compile, accept every example, and refuse what the models refuse.

The rules are evaluated with cel-python the way the API server applies them: on each object
that carries `x-kubernetes-validations`, after scalar defaults are filled in.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from gym_operator.api import SpecError, parse_resource

ROOT = Path(__file__).resolve().parents[2]
PLURALS = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}
ENV = celpy.Environment()


def schema_of(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / f"gymops.dev_{PLURALS[kind]}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def with_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill scalar defaults into present objects, as the API server does before validating."""
    if isinstance(value, dict) and "properties" in schema:
        out = dict(value)
        for name, sub in schema["properties"].items():
            if name not in out and "default" in sub:
                out[name] = sub["default"]
            if name in out:
                out[name] = with_defaults(sub, out[name])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def rule_failures(schema: dict[str, Any], value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, message) of every CEL rule that does not hold."""
    failures: list[tuple[str, str]] = []
    for rule in schema.get("x-kubernetes-validations") or []:
        program = ENV.program(ENV.compile(rule["rule"]))
        if not program.evaluate({"self": celpy.json_to_cel(value)}):
            failures.append((path, rule["message"]))
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                failures += rule_failures(sub, value[name], f"{path}.{name}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            failures += rule_failures(schema["items"], item, f"{path}[{index}]")
    return failures


def failures_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    schema = schema_of(body["kind"])
    return rule_failures(schema, with_defaults(schema, body))


def test_every_rule_compiles() -> None:
    def rules(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [r["rule"] for r in node.get("x-kubernetes-validations") or []]
            return own + [r for v in node.values() for r in rules(v)]
        if isinstance(node, list):
            return [r for v in node for r in rules(v)]
        return []

    found = rules(schema_of("RolloutJob")) + rules(schema_of("Dataset"))
    assert len(found) >= 8
    for rule in found:
        ENV.compile(rule)


def examples() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((ROOT / "manifests" / "examples").glob("**/*.yaml")):
        docs += [
            d
            for d in yaml.safe_load_all(path.read_text())
            if d and str(d.get("apiVersion", "")).startswith("gymops.dev/")
        ]
    return docs


@pytest.mark.parametrize("body", examples(), ids=lambda d: d["metadata"]["name"])
def test_examples_satisfy_every_rule(body: dict[str, Any]) -> None:
    assert failures_of(body) == []


JOB: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "j"},
    "spec": {
        "input": {"uri": "s3://b/t.jsonl"},
        "policy": {"baseURL": "http://vllm:8000/v1", "model": "m"},
        "verifier": {"builtin": "math"},
        "output": {"uri": "s3://b/o/"},
    },
}
DATASET: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "Dataset",
    "metadata": {"name": "d"},
    "spec": {
        "sources": [{"rolloutJobRef": "j"}],
        "kind": "dpo",
        "format": "trl",
        "output": {"uri": "s3://b/d/"},
    },
}


def changed(body: dict[str, Any], **spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    out["spec"].update(spec)
    return out


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            changed(JOB, verifier={"builtin": "math", "url": "http://v:8000"}),
            ".spec.verifier",
            "set exactly one of verifier.builtin, verifier.image and verifier.url",
        ),
        (
            changed(JOB, policy={"baseURL": "http://v/v1", "model": "m", "embedded": "smollm2"}),
            ".spec.policy",
            "set exactly one of policy.baseURL, policy.embedded, policy.server and "
            "policy.endpointRef",
        ),
        (
            changed(
                JOB,
                policy={
                    "server": {"image": "vllm", "model": "m"},
                    "baseURL": "http://v/v1",
                    "model": "m",
                },
            ),
            ".spec.policy",
            "set exactly one of policy.baseURL, policy.embedded, policy.server and "
            "policy.endpointRef",
        ),
        (
            changed(JOB, policy={"endpointRef": {"name": "vllm", "port": 8000}}),
            ".spec.policy",
            "policy.model is required with policy.endpointRef",
        ),
        (
            changed(JOB, policy={"endpointRef": {"name": "vllm"}, "model": "m"}),
            ".spec.policy.endpointRef",
            "endpointRef.port is required for a Service",
        ),
        (
            changed(
                JOB,
                policy={
                    "server": {
                        "image": "vllm",
                        "model": "m",
                        "volumes": [{"name": "cache", "mountPath": "/c"}],
                    }
                },
            ),
            ".spec.policy.server.volumes[0]",
            "set exactly one of claimName and emptyDir",
        ),
        (
            changed(JOB, policy={"baseURL": "http://v/v1"}),
            ".spec.policy",
            "policy.model is required with policy.baseURL",
        ),
        (
            changed(JOB, retry={"requestTimeoutSeconds": 900, "maxRetrySeconds": 60}),
            ".spec.retry",
            "retry.maxRetrySeconds must be at least retry.requestTimeoutSeconds",
        ),
        (
            changed(DATASET, sources=[{"rolloutJobRef": "j", "uri": "s3://b/r/"}]),
            ".spec.sources[0]",
            "set exactly one of rolloutJobRef and uri in each source",
        ),
        (
            changed(DATASET, kind="sft", pairing={"minQualityDifference": 0.2}),
            ".spec",
            "pairing applies only to kind dpo",
        ),
        (
            changed(DATASET, kind="sft", format="verl"),
            ".spec",
            "verl SFT data must be parquet (output.fileFormat: parquet)",
        ),
        (
            changed(
                DATASET,
                kind="sft",
                format="nemo-rl",
                output={"uri": "s3://b/d/", "fileFormat": "parquet"},
            ),
            ".spec",
            "format nemo-rl reads only output.fileFormat jsonl",
        ),
        (
            changed(DATASET, filters={"passRate": {"min": 0.9, "max": 0.1}}),
            ".spec.filters.passRate",
            "passRate.min must not exceed passRate.max",
        ),
        (
            changed(DATASET, filters={"minReward": 1.0, "maxReward": 0.5}),
            ".spec.filters",
            "filters.minReward must not exceed filters.maxReward",
        ),
    ],
)
def test_cross_field_rules_refuse_what_the_models_refuse(
    body: dict[str, Any], path: str, message: str
) -> None:
    assert failures_of(body) == [(path, message)]
    with pytest.raises(SpecError) as info:
        parse_resource(body)
    assert any(message in problem for problem in info.value.problems), info.value.problems


def test_the_base_resources_pass() -> None:
    assert failures_of(JOB) == [] and failures_of(DATASET) == []

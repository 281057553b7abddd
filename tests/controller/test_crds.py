"""The CRDs in crds/ are generated from api/, structural, documented, and refuse bad CRs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gym_operator.controller import crdgen

ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "manifests" / "examples"

GOOD_JOB: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "math-run1"},
    "spec": {
        "input": {"uri": "s3://bucket/tasks.jsonl"},
        "policy": {"baseURL": "http://vllm:8000/v1", "model": "qwen3-8b"},
        "sampling": {"numRepeats": 4, "params": {"temperature": 0.7, "presence_penalty": 0.1}},
        "verifier": {"builtin": "math", "config": {"anything": {"nested": True}}},
        "output": {"uri": "s3://bucket/rollouts/run1/"},
    },
}
GOOD_DATASET: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "Dataset",
    "metadata": {"name": "math-sft"},
    "spec": {
        "sources": [{"rolloutJobRef": "math-run1"}],
        "kind": "sft",
        "format": "trl",
        "output": {"uri": "s3://bucket/datasets/sft/"},
    },
}


def load_crd(plural: str) -> dict[str, Any]:
    return yaml.safe_load((CRDS_DIR / f"gymops.dev_{plural}.yaml").read_text())


def schema_of(plural: str) -> dict[str, Any]:
    crd = load_crd(plural)
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def validator(plural: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(crdgen.openapi_to_jsonschema(schema_of(plural)))


def error_paths(plural: str, body: dict[str, Any]) -> list[str]:
    return [e.json_path for e in validator(plural).iter_errors(body)]


def with_change(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    *parents, last = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return out


def test_crds_are_up_to_date_with_api() -> None:
    expected = crdgen.render_all()
    assert sorted(p.name for p in CRDS_DIR.glob("*.yaml")) == sorted(expected)
    for name, text in expected.items():
        assert (CRDS_DIR / name).read_text() == text, f"{name} is stale: run `make crds`"


def test_gymops_crds_command_writes_the_files(tmp_path: Path) -> None:
    from gym_operator.cli import main

    assert main(["crds", "--output", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gymops.dev_datasets.yaml",
        "gymops.dev_rolloutjobs.yaml",
    ]


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for name, sub in (schema.get("properties") or {}).items():
        nodes += walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        nodes += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += walk(schema["additionalProperties"], f"{path}.*")
    return nodes


@pytest.mark.parametrize("plural", ["rolloutjobs", "datasets"])
def test_schema_is_structural_and_documented(plural: str) -> None:
    for path, node in walk(schema_of(plural)):
        assert "$ref" not in node and "anyOf" not in node and "allOf" not in node, path
        untyped = ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string")
        assert node.get("type") or any(node.get(key) for key in untyped), path
        assert node.get("type") != "null", path
        # metadata is the API server's ObjectMeta: a CRD may give it no description.
        documented = path != ".metadata" and not path.endswith(("*", "[]"))
        if path.count(".") >= 1 and documented:
            assert node.get("description"), f"{path} has no description (kubectl explain)"
        if "properties" in node:
            assert node.get("additionalProperties") in (None, True) or isinstance(
                node.get("additionalProperties"), dict
            ), path


def test_names_columns_and_status_subresource() -> None:
    rj = load_crd("rolloutjobs")
    ds = load_crd("datasets")
    assert rj["spec"]["names"]["shortNames"] == ["rj"]
    assert ds["spec"]["names"]["shortNames"] == ["gds"]
    for crd in (rj, ds):
        assert crd["spec"]["names"]["categories"] == ["gymops"]
        assert crd["spec"]["scope"] == "Namespaced"
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    columns = rj["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns if not c.get("priority")] == [
        "Phase", "Progress", "Rollouts/s", "Reward", "Age"
    ]  # fmt: skip
    wide = [c["name"] for c in columns if c.get("priority") == 1]
    assert wide == ["Failed", "ETA", "Concurrency", "Message"]


def test_cel_rules_and_unknown_fields_come_from_the_models() -> None:
    spec = schema_of("rolloutjobs")["properties"]["spec"]["properties"]
    verifier_rules = [r["rule"] for r in spec["verifier"]["x-kubernetes-validations"]]
    assert any("has(self.builtin)" in rule for rule in verifier_rules)
    assert spec["policy"]["x-kubernetes-validations"]
    assert spec["retry"]["x-kubernetes-validations"]
    assert spec["sampling"]["properties"]["params"]["x-kubernetes-preserve-unknown-fields"]
    assert spec["verifier"]["properties"]["config"]["x-kubernetes-preserve-unknown-fields"]
    ds = schema_of("datasets")["properties"]["spec"]
    assert len(ds["x-kubernetes-validations"]) >= 3
    source_rules = ds["properties"]["sources"]["items"]["x-kubernetes-validations"]
    assert "has(self.rolloutJobRef) != has(self.uri)" in source_rules[0]["rule"]


def test_enums_bounds_and_exclusive_bounds() -> None:
    spec = schema_of("rolloutjobs")["properties"]["spec"]["properties"]
    assert spec["output"]["properties"]["compression"]["enum"] == ["zstd", "gzip", "none"]
    assert spec["parallelism"]["minimum"] == 1 and spec["parallelism"]["maximum"] == 1000
    top_p = spec["sampling"]["properties"]["params"]["properties"]["top_p"]
    assert top_p["minimum"] == 0 and top_p["exclusiveMinimum"] is True
    assert spec["input"]["required"] == ["uri"]
    assert "ttlSecondsAfterFinished" not in spec.get("required", [])


def test_valid_resources_pass() -> None:
    assert error_paths("rolloutjobs", GOOD_JOB) == []
    assert error_paths("datasets", GOOD_DATASET) == []


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("spec.parallelism", 0, "$.spec.parallelism"),
        ("spec.parallelism", "eight", "$.spec.parallelism"),
        ("spec.output", {"uri": "s3://b/o/", "compression": "lz4"}, "$.spec.output.compression"),
        ("spec.policy", {"baseURL": "ftp://x", "model": "m"}, "$.spec.policy.baseURL"),
        ("spec.sampling", {"numRepeat": 2}, "$.spec.sampling"),
        ("spec.verifier", {"builtin": "chess"}, "$.spec.verifier.builtin"),
        ("spec.sampling", {"params": {"top_p": 0}}, "$.spec.sampling.params.top_p"),
        ("spec.input", {}, "$.spec.input"),
    ],
)
def test_invalid_rolloutjobs_are_refused_naming_the_field(
    path: str, value: Any, named: str
) -> None:
    paths = error_paths("rolloutjobs", with_change(GOOD_JOB, path, value))
    assert named in paths, paths


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("spec.kind", "ppo", "$.spec.kind"),
        ("spec.format", "axolotl", "$.spec.format"),
        ("spec.sources", [], "$.spec.sources"),
        ("spec.split", {"validationFraction": 1.0}, "$.spec.split.validationFraction"),
        ("spec.filters", {"dedup": "fuzzy"}, "$.spec.filters.dedup"),
    ],
)
def test_invalid_datasets_are_refused_naming_the_field(path: str, value: Any, named: str) -> None:
    paths = error_paths("datasets", with_change(GOOD_DATASET, path, value))
    assert named in paths, paths


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(EXAMPLES_DIR.glob("**/*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion", "").startswith("gymops.dev/"):
                docs.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return docs


def test_examples_exist() -> None:
    kinds = {doc["kind"] for _, doc in example_documents()}
    assert kinds == {"RolloutJob", "Dataset"}


@pytest.mark.parametrize(
    ("name", "doc"), example_documents(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_example_validates_against_its_crd(name: str, doc: dict[str, Any]) -> None:
    plural = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}[doc["kind"]]
    errors = [f"{e.json_path}: {e.message}" for e in validator(plural).iter_errors(doc)]
    assert errors == [], name

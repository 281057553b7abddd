"""The same bad-spec corpus against the real API server: every entry is refused by the server
itself (the CRD's structural schema, CEL rules, strict field validation), naming the field that
pydantic names; the good bodies are accepted. A few go through `kubectl apply` as users do."""

from __future__ import annotations

import json
import subprocess
import sys
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest
import yaml
from badspecs import (
    CONFLICT,
    GOOD_DATASET,
    GOOD_JOB,
    MISSING,
    OUT_OF_RANGE,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    mutated,
)
from cluster.fixtures import KubeCluster
from kubernetes import client

from gym_operator.api import SpecError, parse_resource

PLURAL = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
ALL = OUT_OF_RANGE + WRONG_TYPE + MISSING + UNKNOWN_FIELD + CONFLICT


def server_answer(kube: KubeCluster, namespace: str, body: dict[str, Any]) -> str | None:
    """The server's refusal of a dry-run create with strict field validation (None: accepted)."""
    custom = client.CustomObjectsApi(kube.api)
    try:
        custom.create_namespaced_custom_object(
            "gymops.dev", "v1alpha1", namespace, PLURAL[body["kind"]], body,
            dry_run="All", field_validation="Strict",
        )  # fmt: skip
    except client.ApiException as exc:
        assert exc.status in (400, 422), exc
        return str(json.loads(exc.body)["message"])
    return None


def model_problem(body: dict[str, Any]) -> tuple[str, str]:
    """(field, message) of pydantic's one problem with the body."""
    with pytest.raises(SpecError) as info:
        parse_resource(body)
    where, _, message = info.value.problems[0].partition(": ")
    return where, message


def same_rule(server: str, model: str) -> bool:
    """The server's CEL message is the model's, or both share a long phrase (a CEL message cannot
    interpolate the offending values the model names)."""
    match = SequenceMatcher(None, server, model).find_longest_match()
    return model in server or match.size >= 15


@pytest.mark.parametrize("body", [GOOD_JOB, GOOD_DATASET], ids=["RolloutJob", "Dataset"])
def test_good_bodies_are_accepted(kube: KubeCluster, namespace: str, body: dict) -> None:
    assert server_answer(kube, namespace, body) is None


@pytest.mark.parametrize(
    ("path", "value", "kind", "field", "cel"),
    [pytest.param(c[2], c[3], c[1], c[4], c in CONFLICT, id=c[0]) for c in ALL],
)
def test_the_server_refuses_naming_the_field_pydantic_names(
    kube: KubeCluster, namespace: str, path: str, value: object, kind: str, field: str, cel: bool
) -> None:
    body = mutated(kind, path, value)
    answer = server_answer(kube, namespace, body)
    assert answer is not None, "the API server accepts what the models refuse"
    where, message = model_problem(body)
    assert where == field
    assert field in answer, answer
    if cel:
        assert same_rule(answer, message), (answer, message)


@pytest.mark.parametrize(
    "case", [OUT_OF_RANGE[0], UNKNOWN_FIELD[1], MISSING[0], CONFLICT[0]], ids=lambda c: c[0]
)
def test_kubectl_apply_shows_the_servers_refusal(
    kube: KubeCluster, namespace: str, tmp_path: Path, case: tuple
) -> None:
    _, kind, path, value, field = case
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(mutated(kind, path, value)))
    base = [KUBECTL, "--kubeconfig", str(kube.kubeconfig), "-n", namespace]
    applied = subprocess.run(
        [*base, "apply", "-f", str(manifest)], capture_output=True, text=True, timeout=120
    )
    assert applied.returncode != 0
    assert field in applied.stderr, applied.stderr

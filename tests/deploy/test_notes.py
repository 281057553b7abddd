"""NOTES.txt tells the next commands, for the namespaces the operator actually watches."""

from __future__ import annotations

from deploykit import CHART, run


def notes(helm: str, *sets: str) -> str:
    args = [helm, "install", "gym", str(CHART), "--namespace", "ops", "--dry-run=client"]
    for item in sets:
        args += ["--set", item]
    result = run(args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


def test_cluster_scope_notes(helm: str) -> None:
    text = notes(helm)
    assert "in every namespace" in text
    assert "kubectl -n ops rollout status deployment/gym-gym-operator" in text
    assert "kubectl apply -f manifests/examples/rolloutjob-sft.yaml" in text
    assert "install the CRDs yourself" not in text


def test_namespaced_notes_use_a_watched_namespace(helm: str) -> None:
    text = notes(helm, "rbac.scope=namespaces", "rbac.namespaces={team-a,team-b}")
    assert "in: team-a, team-b." in text
    assert "kubectl -n team-a apply -f manifests/examples/rolloutjob-sft.yaml" in text
    assert "kubectl -n team-a create secret generic s3-credentials" in text


def test_notes_say_when_crds_are_not_installed(helm: str) -> None:
    assert "install the CRDs yourself" in notes(helm, "crds.install=false")

"""helm lint, helm template and kubectl kustomize render objects that Kubernetes' schemas accept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from deploykit import BIN, CHART, CI_VALUES, OVERLAYS, Manifest, documents, run

NOT_IN_KUBERNETES_SCHEMAS: frozenset[str] = frozenset(
    {
        "monitoring.coreos.com/v1/ServiceMonitor",
        "monitoring.coreos.com/v1/PodMonitor",
        "gymops.dev/v1alpha1/RolloutJob",
        "gymops.dev/v1alpha1/Dataset",
    }
)
"""Kinds kubernetes-validate has no schema for; checked by the other tests in this folder."""

VALUE_SETS = [None, *CI_VALUES]
VALUE_IDS = ["default", *(path.stem for path in CI_VALUES)]


def validate_strict(objects: list[Manifest], kubernetes_version: str | None = None) -> None:
    """kubernetes-validate --strict over the objects, minus the listed kinds it cannot know."""
    known = [
        obj
        for obj in objects
        if f"{obj['apiVersion']}/{obj['kind']}" not in NOT_IN_KUBERNETES_SCHEMAS
    ]
    assert known, "nothing to validate"
    version = ["--kubernetes-version", kubernetes_version] if kubernetes_version else []
    result = run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", *version, "-"],
        stdin=yaml.safe_dump_all(known),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Couldn't find schema" not in output, output


def test_ci_value_sets_exist() -> None:
    assert {path.stem for path in CI_VALUES} >= {
        "namespaced-values",
        "monitoring-values",
        "no-crds-values",
        "production-values",
    }


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_helm_lint_is_clean(helm: str, values: Path | None) -> None:
    args = [helm, "lint", "--strict", str(CHART)]
    if values is not None:
        args += ["--values", str(values)]
    result = run(args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", VALUE_SETS, ids=VALUE_IDS)
def test_helm_template_passes_kubernetes_validate_strict(
    render: Callable[..., list[Manifest]], values: Path | None
) -> None:
    validate_strict(render(values))


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_kustomize_overlay_passes_kubernetes_validate_strict(
    kustomize: Callable[[Path], list[Manifest]], overlay: Path
) -> None:
    validate_strict(kustomize(overlay))


def test_kubernetes_validate_catches_a_wrong_object() -> None:
    broken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "not-a-number"}], "unknownField": 1},
    }
    with pytest.raises(AssertionError, match="not of type 'integer'"):
        validate_strict([broken])


def test_every_overlay_renders_the_operator(kustomize: Callable[[Path], list[Manifest]]) -> None:
    assert {path.name for path in OVERLAYS} == {"base", "namespaced", "with-monitoring"}
    for overlay in OVERLAYS:
        kinds = {obj["kind"] for obj in kustomize(overlay)}
        assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Service"} <= kinds
        assert {"ClusterRole", "ClusterRoleBinding"} <= kinds


def test_oldest_supported_kubernetes_accepts_the_chart(helm: str) -> None:
    monitoring = next(p for p in CI_VALUES if p.stem == "monitoring-values")
    args = [helm, "template", "gymops", str(CHART), "--values", str(monitoring)]
    result = run([*args, "--kube-version", "1.31.0"])
    assert result.returncode == 0, result.stderr
    validate_strict(documents(result.stdout), kubernetes_version="1.31.0")
    too_old = run([*args, "--kube-version", "1.30.0"])
    assert too_old.returncode != 0 and "kubeVersion" in too_old.stderr

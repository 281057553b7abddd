"""values.schema.json makes `helm template` refuse wrong values, naming the value."""

from __future__ import annotations

import json

import pytest
from deploykit import CHART, NAMESPACE, RELEASE, run


def helm_template(helm: str, *args: str) -> tuple[int, str]:
    result = run([helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args])
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--set-string", "metrics.port=9090"], "/metrics/port"),
        (["--set", "metrics.port=http"], "/metrics/port"),
        (["--set", "metrics.port=70000"], "/metrics/port"),
        (["--set-string", "operator.reconcileSeconds=ten"], "/operator/reconcileSeconds"),
        (["--set-string", "livenessProbe.periodSeconds=20"], "/livenessProbe/periodSeconds"),
        (["--set", "rbac.scope=namespace"], "/rbac/scope"),
        (["--set", "rbac.scope=clusterwide"], "/rbac/scope"),
        (["--set", "rbac.namespaces={Team_A}"], "/rbac/namespaces/0"),
        (["--set-string", "crds.install=yes"], "/crds/install"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "securityContext.allowPrivilegeEscalation=true"], "allowPrivilegeEscalation"),
        (["--set", "podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
        (["--set", "metrics.serviceMonitor.interval=30"], "/metrics/serviceMonitor/interval"),
        (["--set", "replicas=2"], "replicas"),
        (["--set", "rbac.scopes=cluster"], "scopes"),
    ],
)
def test_wrong_value_fails_helm_template(helm: str, args: list[str], names: str) -> None:
    code, stderr = helm_template(helm, *args)
    assert code != 0, f"helm template accepted {args}"
    assert names in stderr, stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "rbac.scope=namespaces", "--set", "rbac.namespaces={team-a,team-b}"],
        ["--set", "metrics.port=9191", "--set-json", "operator.reconcileSeconds=2.5"],
        ["--set", "image.tag=0.2.0", "--set", "worker.imagePullPolicy=Always"],
    ],
)
def test_right_values_pass(helm: str, args: list[str]) -> None:
    code, stderr = helm_template(helm, *args)
    assert code == 0, stderr


def test_schema_covers_every_default_value() -> None:
    """Each key of values.yaml has a schema entry (so a typo of it is refused, not ignored);
    free-form maps (securityContext, affinity, ...) are Kubernetes types passed through."""
    import yaml

    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    def walk(value: object, node: dict[str, object], path: str) -> None:
        if not isinstance(value, dict) or node.get("additionalProperties") is not False:
            return
        props = node["properties"]
        assert isinstance(props, dict)
        for key, sub in value.items():
            assert key in props, f"{path}.{key} has no schema"
            walk(sub, props[key], f"{path}.{key}")

    walk(values, schema, "values")
    assert schema["additionalProperties"] is False

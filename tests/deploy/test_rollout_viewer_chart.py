"""The chart's rollout viewer: off by default; when on, valid objects behind a read-only account."""

from __future__ import annotations

from collections.abc import Callable

import yaml
from deploykit import BIN, CHART, NAMESPACE, RELEASE, Manifest, of_kind, one, run

COMPONENT = "rollout-viewer"
ON = ["viewer.enabled=true", "viewer.s3.credentialsSecret=viewer-s3", "viewer.namespace=team-a"]


def viewer_objects(objects: list[Manifest]) -> list[Manifest]:
    return [
        o
        for o in objects
        if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/component") == COMPONENT
    ]


def test_off_by_default(render: Callable[..., list[Manifest]]) -> None:
    assert viewer_objects(render()) == []


def test_objects_validate_against_kubernetes_schemas(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = viewer_objects(render(sets=ON))
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"]
    result = run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-"],
        stdin=yaml.safe_dump_all(objects),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_its_own_account_may_only_read_rolloutjobs_and_datasets(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = viewer_objects(render(sets=ON))
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    role, binding = one(objects, "Role"), one(objects, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "team-a"
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["gymops.dev"]
        assert set(rule["resources"]) <= {"rolloutjobs", "datasets"}
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    ]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account
    everything = render(sets=ON)
    operator_accounts = {
        d["spec"]["template"]["spec"]["serviceAccountName"]
        for d in of_kind(everything, "Deployment")
        if d not in objects
    }
    assert account not in operator_accounts


def test_deployment_runs_the_viewer_locked_down(render: Callable[..., list[Manifest]]) -> None:
    objects = viewer_objects(render(sets=ON))
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["command"] == ["gymops"]
    assert container["args"][:3] == ["view", "--kubernetes", "--namespace=team-a"]
    assert "--host=0.0.0.0" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if "valueFrom" in e
    }
    assert secrets == {"AWS_ACCESS_KEY_ID": "viewer-s3", "AWS_SECRET_ACCESS_KEY": "viewer-s3"}
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    selector = service["spec"]["selector"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in selector.items())
    operator = [d for d in of_kind(render(sets=ON), "Deployment") if d is not deployment]
    for other in operator:  # no other Deployment's selector takes the viewer's pods
        match = other["spec"]["selector"]["matchLabels"]
        assert not all(labels.get(k) == v for k, v in match.items())


def test_schema_refuses_a_wrong_viewer_value(helm: str) -> None:
    result = run(
        [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        + ["--set", "viewer.enabled=true", "--set", "viewer.port=http"]
    )
    assert result.returncode != 0 and "/viewer/port" in result.stderr


def operator_env(objects: list[Manifest]) -> dict[str, str]:
    """The plain env values of the operator's container (the Deployment that is not the viewer)."""
    viewers = viewer_objects(objects)
    (operator,) = [d for d in of_kind(objects, "Deployment") if d not in viewers]
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_the_operator_learns_which_namespace_the_viewer_lists(
    render: Callable[..., list[Manifest]],
) -> None:
    assert operator_env(render(sets=ON))["GYMOPS_VIEWER_NAMESPACE"] == "team-a"
    assert operator_env(render(sets=ON[:1]))["GYMOPS_VIEWER_NAMESPACE"] == NAMESPACE
    assert "GYMOPS_VIEWER_NAMESPACE" not in operator_env(render())


def test_notes_tell_how_to_reach_the_viewer(helm: str) -> None:
    args = [helm, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client"]
    off = run(args)
    on = run([*args, "--set", "viewer.enabled=true", "--set", "viewer.namespace=team-a"])
    assert off.returncode == on.returncode == 0, off.stderr + on.stderr
    assert "port-forward svc/gymops-gym-operator-rollout-viewer" not in off.stdout
    notes = on.stdout.split("NOTES:", 1)[1]
    assert "Datasets of team-a" in notes
    assert (
        f"kubectl -n {NAMESPACE} port-forward svc/gymops-gym-operator-rollout-viewer 8765" in notes
    )
    assert "status.viewerPath" in notes

"""The rendered RBAC grants the operator exactly what controller/rbac.py declares, no more."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploykit import CI_VALUES, MANIFESTS, NAMESPACE, Manifest, of_kind, one

from gym_operator.controller import rbac

Grant = tuple[str, str, str]

CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {("", "namespaces"), ("apiextensions.k8s.io", "customresourcedefinitions")}
)
"""Resources without a namespace: only a ClusterRole can grant them."""


def declared() -> set[Grant]:
    """Every (apiGroup, resource, verb) the operator's code uses."""
    return {(p.api_group, p.resource, p.verb) for p in rbac.permissions()}


def declared_cluster_scoped() -> set[Grant]:
    return {g for g in declared() if (g[0], g[1]) in CLUSTER_SCOPED}


def expand(rules: list[Manifest]) -> set[Grant]:
    """PolicyRules as a set of single grants; wildcards and resourceNames are refused."""
    grants = set()
    for rule in rules:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"wildcard in {rule}"
                    grants.add((group, resource, verb))
    return grants


def binds_service_account(binding: Manifest, name: str, namespace: str) -> bool:
    return any(
        s["kind"] == "ServiceAccount" and s["name"] == name and s["namespace"] == namespace
        for s in binding.get("subjects") or []
    )


def operator_grants(objects: list[Manifest]) -> tuple[set[Grant], dict[str, set[Grant]]]:
    """(cluster-wide grants, grants per namespace) of the operator's service account."""
    deployment = one(objects, "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    account_ns = deployment["metadata"].get("namespace", NAMESPACE)
    cluster_roles = {r["metadata"]["name"]: r for r in of_kind(objects, "ClusterRole")}
    roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in of_kind(objects, "Role")
    }
    cluster: set[Grant] = set()
    for binding in of_kind(objects, "ClusterRoleBinding"):
        if binds_service_account(binding, account, account_ns):
            cluster |= expand(cluster_roles[binding["roleRef"]["name"]]["rules"])
    per_namespace: dict[str, set[Grant]] = {}
    for binding in of_kind(objects, "RoleBinding"):
        if binds_service_account(binding, account, account_ns):
            ns = binding["metadata"]["namespace"]
            ref = binding["roleRef"]
            role = roles[(ns, ref["name"])] if ref["kind"] == "Role" else cluster_roles[ref["name"]]
            per_namespace.setdefault(ns, set()).update(expand(role["rules"]))
    return cluster, per_namespace


def operator_args(objects: list[Manifest]) -> list[str]:
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return list(container["args"])


def test_cluster_scope_grants_exactly_the_declared_permissions(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render()
    cluster, per_namespace = operator_grants(objects)
    assert per_namespace == {}
    missing, extra = declared() - cluster, cluster - declared()
    assert not missing, f"the operator would be refused: {sorted(missing)}"
    assert not extra, f"granted but never used: {sorted(extra)}"
    args = operator_args(objects)
    assert "--all-namespaces" in args
    assert not any(a.startswith("--namespace") for a in args)


@pytest.mark.parametrize(
    ("sets", "namespaces"),
    [
        (["rbac.scope=namespaces"], [NAMESPACE]),
        (["rbac.scope=namespaces", "rbac.namespaces={team-a,team-b}"], ["team-a", "team-b"]),
    ],
    ids=["release-namespace", "two-namespaces"],
)
def test_namespaces_scope_grants_roles_per_watched_namespace(
    render: Callable[..., list[Manifest]], sets: list[str], namespaces: list[str]
) -> None:
    objects = render(sets=sets)
    cluster, per_namespace = operator_grants(objects)
    assert cluster == declared_cluster_scoped(), "only cluster-scoped reads may be cluster-wide"
    assert sorted(per_namespace) == sorted(namespaces)
    for ns, grants in per_namespace.items():
        assert grants == declared() - declared_cluster_scoped(), ns
    args = operator_args(objects)
    assert "--all-namespaces" not in args
    assert [a for a in args if a.startswith("--namespace")] == [
        f"--namespace={ns}" for ns in namespaces
    ]


def test_namespaced_ci_values_match_their_roles(render: Callable[..., list[Manifest]]) -> None:
    values = next(path for path in CI_VALUES if path.stem == "namespaced-values")
    _, per_namespace = operator_grants(render(values))
    assert sorted(per_namespace) == ["team-a", "team-b"]


def test_rbac_create_false_renders_no_operator_roles(render: Callable[..., list[Manifest]]) -> None:
    objects = render(sets=["rbac.create=false"])
    assert operator_grants(objects) == (set(), {})


@pytest.mark.parametrize("overlay", ["base", "overlays/with-monitoring"])
def test_kustomize_cluster_install_grants_exactly_the_declared_permissions(
    kustomize: Callable[[Path], list[Manifest]], overlay: str
) -> None:
    objects = kustomize(MANIFESTS / overlay)
    cluster, per_namespace = operator_grants(objects)
    assert cluster == declared()
    assert per_namespace == {}
    assert "--all-namespaces" in operator_args(objects)


def test_kustomize_namespaced_overlay_grants_a_role_in_its_namespace(
    kustomize: Callable[[Path], list[Manifest]],
) -> None:
    objects = kustomize(MANIFESTS / "overlays" / "namespaced")
    cluster, per_namespace = operator_grants(objects)
    assert cluster == declared_cluster_scoped()
    assert per_namespace == {"gym-operator": declared() - declared_cluster_scoped()}
    args = operator_args(objects)
    assert "--namespace=gym-operator" in args and "--all-namespaces" not in args


def test_users_get_aggregated_editor_and_viewer_roles(
    render: Callable[..., list[Manifest]],
) -> None:
    roles = {r["metadata"]["name"]: r for r in of_kind(render(), "ClusterRole")}
    editor = roles["gymops-gym-operator-editor"]
    viewer = roles["gymops-gym-operator-viewer"]
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    edit, view = expand(editor["rules"]), expand(viewer["rules"])
    for resource in ("rolloutjobs", "datasets"):
        assert ("gymops.dev", resource, "create") in edit
        assert ("gymops.dev", resource, "delete") in edit
        assert ("gymops.dev", resource, "watch") in view
    assert {verb for _, _, verb in view} == {"get", "list", "watch"}
    assert not any(resource.endswith("/status") and verb != "get" for _, resource, verb in edit)
    without = of_kind(render(sets=["rbac.aggregateToDefaultRoles=false"]), "ClusterRole")
    assert not [r for r in without if r["metadata"]["name"].endswith(("-editor", "-viewer"))]

"""Every (apiGroup, resource, verb) the operator uses; the Helm chart's RBAC is tested against it.

Two sources: what kopf itself does for the watched resources (declared here, next to the handler
registrations it mirrors in handlers.py), and what the child-object client does
(`kube.PERMISSIONS`, enforced at call time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gym_operator.api import API_GROUP
from gym_operator.controller import kube


@dataclass(frozen=True, order=True)
class Permission:
    """One RBAC grant: a verb on a resource of an API group."""

    api_group: str
    resource: str
    verb: str


WATCHED_RESOURCES: tuple[str, ...] = ("rolloutjobs", "datasets")
"""The custom resources kopf serves (handlers.py registers handlers for exactly these)."""

KOPF_PERMISSIONS: tuple[Permission, ...] = (
    *(
        Permission(API_GROUP, plural, verb)
        for plural in WATCHED_RESOURCES
        for verb in ("get", "list", "watch", "patch")
    ),
    *(
        Permission(API_GROUP, f"{plural}/status", verb)
        for plural in WATCHED_RESOURCES
        for verb in ("get", "patch")
    ),
    Permission("", "events", "create"),
    Permission("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    Permission("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    Permission("", "namespaces", "list"),
    Permission("", "namespaces", "watch"),
)
"""kopf: watch and patch the resources and their status, post Events, discover CRDs and
namespaces (namespaces only matter with --all-namespaces or namespace globs)."""


def client_permissions() -> list[Permission]:
    """What the child-object client may do, from kube.PERMISSIONS."""
    return [
        Permission(kube.RESOURCES[kind].group, kube.RESOURCES[kind].plural, verb)
        for kind, verbs in kube.PERMISSIONS.items()
        for verb in verbs
    ]


def permissions() -> list[Permission]:
    """Every permission the operator needs, sorted and without duplicates."""
    return sorted(set(KOPF_PERMISSIONS) | set(client_permissions()))


def rules() -> list[dict[str, Any]]:
    """The permissions as ClusterRole/Role rules, one rule per (apiGroup, resource)."""
    grouped: dict[tuple[str, str], set[str]] = {}
    for perm in permissions():
        grouped.setdefault((perm.api_group, perm.resource), set()).add(perm.verb)
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for (group, resource), verbs in sorted(grouped.items())
    ]

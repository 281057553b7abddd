"""An in-memory stand-in for controller.kube.KubeClient: objects in a dict, every call recorded.

Only for the reconcile unit tests (no server, no kopf); the real client is exercised by the
real-control-plane tests in tests/e2e.
"""

from __future__ import annotations

import copy
from typing import Any

from kubernetes.client import ApiException

from gym_operator.controller.reconcile import Outcome

Key = tuple[str, str, str]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386) applied in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def applied(resource: dict[str, Any], outcome: Outcome) -> None:
    """Write a reconcile's outcome into the resource as the handler's patch does: its status
    fields (None deletes one) and annotations."""
    status = resource.setdefault("status", {})
    for key, value in outcome.status.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    resource["metadata"].setdefault("annotations", {}).update(outcome.annotations)


class FakeKube:
    """Objects by (kind, namespace, name); `actions` lists each write as (verb, kind, name)."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.actions: list[tuple[str, str, str]] = []
        self.refused_kinds: set[str] = set()
        self._uids = 0

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as if another controller (or the user) made it."""
        meta = obj.setdefault("metadata", {})
        self._uids += 1
        meta.setdefault("uid", f"uid-{self._uids}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.objects[(obj["kind"], meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def creates(self) -> list[tuple[str, str]]:
        """(kind, name) of every object created."""
        return [(kind, name) for verb, kind, name in self.actions if verb == "create"]

    def writes(self, verb: str) -> list[tuple[str, str]]:
        """(kind, name) of every call of a verb."""
        return [(kind, name) for v, kind, name in self.actions if v == verb]

    def create_if_absent(self, manifest: dict[str, Any]) -> bool:
        meta = manifest["metadata"]
        if manifest["kind"] in self.refused_kinds:
            raise ApiException(
                status=403, reason=f'cannot create resource "{manifest["kind"].lower()}s"'
            )
        key = (manifest["kind"], meta.get("namespace", ""), meta["name"])
        if key in self.objects:
            return False
        self.actions.append(("create", manifest["kind"], meta["name"]))
        self.put(copy.deepcopy(manifest))
        return True

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and ns == namespace
            and labels.items() <= (obj["metadata"].get("labels") or {}).items()
        ]

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        self.actions.append(("patch", kind, name))
        found = self.objects.get((kind, namespace, name))
        if found is None:
            return False
        merge(found, patch)
        return True

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        found = self.objects.pop((kind, namespace, name), None)
        if found is not None:
            self.actions.append(("delete", kind, name))
        return found is not None

    def close(self) -> None:
        """Nothing to release."""

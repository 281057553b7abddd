"""The operator's Kubernetes client for child objects: create-if-absent, get, list, patch, delete.

One `ApiClient` per operator process (made at startup, closed on shutdown). Every call names a
kind and a verb from `PERMISSIONS`; a call outside it fails at once, so the RBAC the chart grants
(rbac.py, derived from `PERMISSIONS`) cannot drift from what the code does.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from gym_operator.api import API_GROUP, API_VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiResource:
    """Where a kind lives in the API."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        """The REST path of the collection, or of one object (and its subresource)."""
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        path = f"{base}/namespaces/{namespace}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


RESOURCES: dict[str, ApiResource] = {
    "ConfigMap": ApiResource("", "v1", "configmaps"),
    "Service": ApiResource("", "v1", "services"),
    "Pod": ApiResource("", "v1", "pods"),
    "Secret": ApiResource("", "v1", "secrets"),
    "Deployment": ApiResource("apps", "v1", "deployments"),
    "Job": ApiResource("batch", "v1", "jobs"),
    "RolloutJob": ApiResource(API_GROUP, API_VERSION, "rolloutjobs"),
    "Dataset": ApiResource(API_GROUP, API_VERSION, "datasets"),
    "InferenceService": ApiResource("serving.kserve.io", "v1beta1", "inferenceservices"),
}

PERMISSIONS: dict[str, frozenset[str]] = {
    "ConfigMap": frozenset({"create", "get", "patch", "delete"}),
    "Service": frozenset({"create", "get", "delete"}),
    "Deployment": frozenset({"create", "get", "delete"}),
    "Job": frozenset({"create", "get", "patch", "delete"}),
    "Pod": frozenset({"list"}),
    "Secret": frozenset({"get"}),
    "RolloutJob": frozenset({"get", "delete"}),
    "Dataset": frozenset({"delete"}),
    "InferenceService": frozenset({"get"}),
}
"""Kind -> verbs this client uses (create, get, list, patch, delete). rbac.py reads it."""


class Kube(Protocol):
    """What the reconciles need of the API (KubeClient; an in-memory one in the unit tests)."""

    def create_if_absent(self, manifest: dict[str, Any]) -> bool:
        """Create the object; False when it already exists."""

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when absent."""

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace matching every label."""

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the object; False when it is gone."""

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete it (dependents go too); False when already gone."""

    def close(self) -> None:
        """Release the connections."""


class KubeClient:
    """Thin synchronous REST calls on plain dicts (manifests in, bodies out)."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api = api_client

    @classmethod
    def from_environment(cls) -> KubeClient:
        """In-cluster service account, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()
        return cls(k8s.ApiClient())

    def close(self) -> None:
        """Release the connection pool."""
        self.api.close()

    def _call(
        self,
        kind: str,
        verb: str,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any] | None]:
        if verb not in PERMISSIONS.get(kind, frozenset()):
            raise PermissionError(f"{verb} {kind} is not declared in kube.PERMISSIONS")
        if query:
            path = f"{path}?{urlencode(query)}"
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request)
        raw = response.read()
        data = json.loads(raw) if raw else None
        if response.status >= 400 and response.status not in (404, 409):
            raise k8s.ApiException(status=response.status, reason=str((data or {}).get("message")))
        return response.status, data

    def create_if_absent(self, manifest: dict[str, Any]) -> bool:
        """POST the object; False when it already exists (idempotent reconcile)."""
        kind = manifest["kind"]
        namespace = manifest["metadata"]["namespace"]
        status, data = self._call(kind, "create", "POST", RESOURCES[kind].path(namespace), manifest)
        if status == 409:
            return False
        if status == 404:
            raise k8s.ApiException(status=404, reason=str((data or {}).get("message")))
        return True

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when absent."""
        status, data = self._call(kind, "get", "GET", RESOURCES[kind].path(namespace, name))
        return None if status == 404 else data

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace matching every label (equality selector)."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        status, data = self._call(
            kind, "list", "GET", RESOURCES[kind].path(namespace), query={"labelSelector": selector}
        )
        return [] if status == 404 or data is None else list(data.get("items") or [])

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> bool:
        """Merge-patch the object; False when it is gone."""
        status, _ = self._call(
            kind,
            "patch",
            "PATCH",
            RESOURCES[kind].path(namespace, name),
            patch,
            content_type="application/merge-patch+json",
        )
        return status != 404

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete with background propagation (dependents go too); False when already gone."""
        status, _ = self._call(
            kind,
            "delete",
            "DELETE",
            RESOURCES[kind].path(namespace, name),
            {"propagationPolicy": "Background"},
        )
        return status != 404

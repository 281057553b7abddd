"""Helpers of the model-server and Kueue tests: local "images" for the node agent, a pod's
/stats over the agent's socket, and the operator's own writes from the audit log."""

from __future__ import annotations

import http.client
import json
import socket
import sys
from typing import Any

from clusterkit import Cluster, wait_for
from kubernetes import client

STUB_IMAGE = "registry.test/stub-model"
"""The stub OpenAI-compatible model as a server image (serves /v1/models, answers math)."""
CRASH_IMAGE = "registry.test/crashing-model-server"
"""A model server that dies at start, as vLLM does when its GPU has too little memory."""
CRASH_MESSAGE = "torch.OutOfMemoryError: CUDA out of memory"
LLAMA_IMAGE = "registry.test/llama-cpp-python"
"""llama-cpp-python's OpenAI-compatible server, as `gymops demo` starts it (rollout.embedded)."""
STUB_ARGS = ["--host", "127.0.0.1", "--port", "8000"]
"""Loopback: the node agent bridges the pod's port to 127.0.0.1 (a wildcard bind would collide
with the agent's listeners on Service IPs that share the port)."""


def register_images(cluster: Cluster) -> None:
    """Teach the node agent what the test images run (adds entries, changes none)."""
    python = sys.executable
    cluster.kube.agent.images.setdefault(
        STUB_IMAGE, {"": [python, "-m", "gym_operator.testing.stub_model"]}
    )
    cluster.kube.agent.images.setdefault(
        LLAMA_IMAGE, {"": [python, "-m", "gym_operator.rollout.embedded"]}
    )
    crash = f"import sys; print({CRASH_MESSAGE!r}, file=sys.stderr); sys.exit(1)"
    cluster.kube.agent.images.setdefault(CRASH_IMAGE, {"": [python, "-c", crash]})


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(self.path)
        self.sock = sock


def pod_stats(cluster: Cluster, pod: dict[str, Any], port: int = 8000) -> dict[str, Any]:
    """GET /stats of a stub model pod, through the node agent's socket for the pod's port."""
    box = cluster.kube.agent.by_ip[pod["status"]["podIP"]]
    conn = _UnixConnection(str(box.dir / f"port-{port}.sock"))
    try:
        conn.request("GET", "/stats")
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def operator_writes(cluster: Cluster, resource: str, name: str) -> list[dict[str, Any]]:
    """Request bodies of the operator's (its ServiceAccount's) patches to one object."""
    account = f"system:serviceaccount:{cluster.namespace}:gym-operator"
    bodies = []
    for event in cluster.kube.plane.audit():
        ref = event.get("objectRef") or {}
        if (ref.get("resource"), ref.get("namespace"), ref.get("name")) != (
            resource, cluster.namespace, name,
        ):  # fmt: skip
            continue
        if (event.get("user") or {}).get("username") != account:
            continue
        if event.get("verb") == "patch" and isinstance(event.get("requestObject"), dict):
            bodies.append(event["requestObject"])
    return bodies


def deployment_exists(cluster: Cluster, name: str) -> bool:
    """Whether the Deployment exists in the test's namespace."""
    items = cluster.raw_list(f"/apis/apps/v1/namespaces/{cluster.namespace}/deployments")
    return any(item["metadata"]["name"] == name for item in items)


def pods_with(cluster: Cluster, selector: str) -> list[dict[str, Any]]:
    """Pods matching a label selector, e.g. `app.kubernetes.io/component=model-server`."""
    return cluster.raw_list(
        f"/api/v1/namespaces/{cluster.namespace}/pods?labelSelector={selector.replace('=', '%3D')}"
    )


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    """The status condition of a type ({} when absent)."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def llama_args(port: int = 8000) -> list[str]:
    """The embedded SmolLM2 server's arguments, as `gymops demo` passes them, on `port`."""
    from gym_operator.rollout import embedded

    command = embedded.server_command(
        embedded.model_path("smollm2"), port, "smollm2", embedded.ServerSettings()
    )
    return command[command.index("--model") :]


def run_stub_service(cluster: Cluster, name: str, replicas: int, *, headless: bool = False) -> None:
    """A Deployment of `replicas` stub models behind a Service `name` on port 8000, the way a
    user runs vLLM (`headless`: clusterIP None, for client-side balancing); returns once every
    replica is a ready endpoint (a pod sees the endpoints that were ready when it started)."""
    labels = {"app": name}
    container = {
        "name": "model",
        "image": STUB_IMAGE,
        "args": [*STUB_ARGS, "--latency", "0.05"],
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": "/v1/models", "port": "http"}, "periodSeconds": 1},
    }
    template = {"metadata": {"labels": labels}, "spec": {"containers": [container]}}
    cluster.apps.create_namespaced_deployment(
        cluster.namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": template,
            },
        },
    )
    service: dict[str, object] = {"selector": labels, "ports": [{"name": "http", "port": 8000}]}
    if headless:
        service["clusterIP"] = "None"
    cluster.core.create_namespaced_service(
        cluster.namespace, {"metadata": {"name": name}, "spec": service}
    )
    discovery = client.DiscoveryV1Api(cluster.kube.api)

    def ready_endpoints() -> int:
        slices = discovery.list_namespaced_endpoint_slice(
            cluster.namespace, label_selector=f"kubernetes.io/service-name={name}"
        ).items
        return sum(1 for s in slices for e in s.endpoints or [] if e.conditions.ready)

    wait_for(lambda: ready_endpoints() == replicas, f"{replicas} ready endpoints of {name}", 90)


def wait_verifier_ready(cluster: Cluster, job: str) -> None:
    """Until the RolloutJob's verifier Deployment has a ready replica."""
    wait_for(
        lambda: (
            cluster.apps.read_namespaced_deployment(
                f"{job}-verifier", cluster.namespace
            ).status.ready_replicas
        ),
        f"the verifier of {job} ready",
        timeout=90,
    )


ISVC_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "inferenceservices.serving.kserve.io"},
    "spec": {
        "group": "serving.kserve.io",
        "scope": "Namespaced",
        "names": {
            "kind": "InferenceService",
            "plural": "inferenceservices",
            "singular": "inferenceservice",
            "shortNames": ["isvc"],
        },
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}
"""KServe's InferenceService API (group, version, kind, status subresource) without KServe:
the test plays KServe's controller and publishes status.url itself."""


def ensure_inference_service_api(cluster: Cluster) -> None:
    """Serve the InferenceService API (once per control plane)."""
    ext = client.ApiextensionsV1Api(cluster.api_client)
    try:
        ext.create_custom_resource_definition(ISVC_CRD)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    wait_for(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in ext.read_custom_resource_definition(
                ISVC_CRD["metadata"]["name"]
            ).status.conditions
            or []
        ),
        "the InferenceService API",
        timeout=60,
    )

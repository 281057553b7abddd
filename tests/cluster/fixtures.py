"""pytest fixtures of the real control plane: one per session, a fresh namespace per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from cluster.nodeagent import NodeAgent
from cluster.plane import ControlPlane

NODE = "node-1"
CRDS = Path(__file__).resolve().parents[2] / "crds"


@dataclass
class KubeCluster:
    """The control plane, its node agent and an admin client."""

    plane: ControlPlane
    agent: NodeAgent
    api: client.ApiClient

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig."""
        return self.plane.admin_kubeconfig


def start_cluster(root: Path | None = None) -> KubeCluster:
    """Start a control plane and one node agent; the node may read Services and EndpointSlices."""
    plane = ControlPlane(root).start()
    try:
        api = config.new_client_from_config(str(plane.admin_kubeconfig))
        rbac = client.RbacAuthorizationV1Api(api)
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": f"gymops-test:{NODE}:proxier"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:node-proxier",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                     "name": f"system:node:{NODE}"}
                ],
            }
        )  # fmt: skip
        install_crds(api)
        agent = NodeAgent(plane.node_kubeconfig(NODE), NODE, plane.root / "node").start()
    except BaseException:
        plane.stop(keep=True)
        raise
    return KubeCluster(plane, agent, api)


def install_crds(api: client.ApiClient, timeout: float = 60) -> None:
    """Create the CRDs of crds/ and wait until the server serves them (Established)."""
    ext = client.ApiextensionsV1Api(api)
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        ext.create_custom_resource_definition(body)
        names.append(body["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {name} not Established after {timeout} s")
            time.sleep(0.2)


def stop_cluster(kube: KubeCluster) -> None:
    """Stop the agent, then the control plane."""
    kube.agent.stop()
    kube.plane.stop()


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    """The session's control plane (started on first use)."""
    cluster = start_cluster()
    yield cluster
    stop_cluster(cluster)


@pytest.fixture
def namespace_factory(kube: KubeCluster) -> Iterator[Callable[[], str]]:
    """`namespace_factory()`: a fresh namespace with its default ServiceAccount (so pods are
    admitted); every one is deleted after the test."""
    core = client.CoreV1Api(kube.api)
    made: list[str] = []

    def make() -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name}})
        made.append(name)
        wait_for_default_account(core, name)
        return name

    yield make
    for name in made:
        core.delete_namespace(name)


@pytest.fixture
def namespace(namespace_factory: Callable[[], str]) -> str:
    """The test's own namespace."""
    return namespace_factory()


def wait_for_default_account(core: client.CoreV1Api, namespace: str, timeout: float = 60) -> None:
    """The serviceaccount controller makes `default` shortly after the namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        time.sleep(0.2)
    raise AssertionError(f"no default ServiceAccount in {namespace} after {timeout} s")

"""Fixtures of the tests that run the operator on the real control plane (e2e and faults):
the test's namespace, the operator process under its own RBAC, and the world real pods work in
(moto S3, the stub model). Imported into the conftest.py files that use them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cluster.fixtures import KubeCluster
from clusterkit import Cluster, Operator, World, operator_identity

from gym_operator.testing.stub_model import StubModel, serve_in_thread


def port_of(url: str) -> int:
    """The port of a loopback URL."""
    port = urlsplit(url).port
    assert port is not None, url
    return port


@pytest.fixture
def cluster(kube: KubeCluster, namespace: str, moto_server: str) -> Cluster:
    """The official client on the real control plane, in a fresh namespace; pods reach moto."""
    kube.agent.expose(port_of(moto_server))
    return Cluster(kube, namespace)


@pytest.fixture
def operator_env(moto_server: str) -> dict[str, str]:
    """Environment of the operator process: S3 is the moto server on loopback, never AWS."""
    return {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture
def operator(cluster: Cluster, tmp_path: Path, operator_env: dict[str, str]) -> Iterator[Operator]:
    """`gymops operator --namespace <test namespace>` with its ServiceAccount's token."""
    kubeconfig = operator_identity(cluster, tmp_path / "operator.kubeconfig")
    proc = Operator(kubeconfig, cluster.namespace, tmp_path / "operator.log", operator_env)
    yield proc.start()
    if proc.proc is not None:
        cluster.delete_resources()  # the operator releases its finalizers; the GC stops the pods
    proc.stop()


@pytest.fixture
def world(cluster: Cluster, s3_bucket: str, s3_env: str) -> Iterator[World]:
    """Tasks in moto S3, the S3 Secret, and the stub model, reachable from pods."""
    stub = StubModel()
    with serve_in_thread(stub) as model_url:
        cluster.kube.agent.expose(port_of(model_url))
        yield World(cluster, s3_bucket, s3_env, model_url, stub)

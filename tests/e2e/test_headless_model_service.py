"""A model behind a headless Service on the real control plane: the generators resolve its name
to one address per ready replica and spread their requests over all of them."""

from __future__ import annotations

import pytest
from clusterkit import Cluster, Operator, World, wait_for
from kubernetes import client
from serverkit import (
    STUB_ARGS,
    STUB_IMAGE,
    pod_stats,
    pods_with,
    register_images,
    wait_verifier_ready,
)

MODEL = "stub-headless"


@pytest.fixture(autouse=True)
def images(cluster: Cluster) -> None:
    register_images(cluster)


def run_headless_model(cluster: Cluster, replicas: int) -> None:
    """`replicas` stub models behind headless Service MODEL (clusterIP None) on port 8000, the
    way a user runs vLLM for client-side balancing; returns once each is a ready endpoint (a
    pod sees the endpoints that were ready when it started)."""
    labels = {"app": MODEL}
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
            "metadata": {"name": MODEL},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": template,
            },
        },
    )
    service = {"clusterIP": "None", "selector": labels, "ports": [{"name": "http", "port": 8000}]}
    cluster.core.create_namespaced_service(
        cluster.namespace, {"metadata": {"name": MODEL}, "spec": service}
    )
    discovery = client.DiscoveryV1Api(cluster.kube.api)

    def ready_endpoints() -> int:
        slices = discovery.list_namespaced_endpoint_slice(
            cluster.namespace, label_selector=f"kubernetes.io/service-name={MODEL}"
        ).items
        return sum(1 for s in slices for e in s.endpoints or [] if e.conditions.ready)

    wait_for(lambda: ready_endpoints() == replicas, f"{replicas} ready endpoints", timeout=90)


def test_a_headless_service_of_two_stub_models_serves_the_job_from_both_replicas(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    run_headless_model(cluster, replicas=2)
    host = f"{MODEL}.{cluster.namespace}.svc.cluster.local:8000"
    policy = {"baseURL": f"http://{host}/v1", "model": "stub"}
    # Created suspended, resumed once its verifier serves: this test is about the model's
    # replicas, not about generators that start beside a verifier still starting.
    cluster.create(world.rolloutjob("headless", tasks=12, policy=policy, suspend=True))
    wait_verifier_ready(cluster, "headless")
    cluster.patch_spec("RolloutJob", "headless", {"suspend": False})
    status = cluster.wait_phase("RolloutJob", "headless", "Succeeded", timeout=240)
    assert (status["progress"]["completed"], status["progress"]["failed"]) == (24, 0)

    stub_pods = pods_with(cluster, f"app={MODEL}")
    assert len(stub_pods) == 2
    stats = [pod_stats(cluster, pod) for pod in stub_pods]
    served = [s["requests"] for s in stats]
    assert all(count > 0 for count in served), served  # both replicas, not one name
    assert sum(served) >= 24
    assert [set(s["hosts"]) for s in stats] == [{host}, {host}]  # the Service name as Host
    assert world.stub.requests == 0  # nothing went to the test's own stub

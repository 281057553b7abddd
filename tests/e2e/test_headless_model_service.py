"""A model behind a headless Service on the real control plane: the generators resolve its name
to one address per ready replica and spread their requests over all of them."""

from __future__ import annotations

import pytest
from clusterkit import Cluster, Operator, World
from serverkit import pod_stats, pods_with, register_images, run_stub_service, wait_verifier_ready

MODEL = "stub-headless"


@pytest.fixture(autouse=True)
def images(cluster: Cluster) -> None:
    register_images(cluster)


def test_a_headless_service_of_two_stub_models_serves_the_job_from_both_replicas(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    run_stub_service(cluster, MODEL, replicas=2, headless=True)
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

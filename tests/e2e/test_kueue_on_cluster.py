"""Kueue's conventions on the real control plane, the test acting as Kueue: queued Jobs are
created suspended with the queue label, stay so until admitted, then run to the end; the
operator never sets suspend back."""

from __future__ import annotations

import time

from clusterkit import Cluster, Operator, World, wait_for
from serverkit import operator_writes

QUEUE = "kueue.x-k8s.io/queue-name"
HOLD_SECONDS = 5.0
"""How long the test watches a queued Job stay suspended: ten of the operator's reconciles."""


def admit(cluster: Cluster, job: str) -> None:
    """What Kueue does when the queue has quota: un-suspend the Job."""
    cluster.batch.patch_namespaced_job(job, cluster.namespace, {"spec": {"suspend": False}})


def test_queued_jobs_wait_suspended_until_kueue_admits_them(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    body = world.rolloutjob("queued", tasks=4)
    body["metadata"]["labels"] = {QUEUE: "team-a", "kueue.x-k8s.io/priority-class": "batch"}
    cluster.create(body)
    job = wait_for(lambda: cluster.job("queued-gen"), "the generator Job", timeout=60)
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][QUEUE] == "team-a"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "batch"
    status = wait_for(
        lambda: (
            (s := cluster.status("RolloutJob", "queued")).get("reason") == "WaitingForAdmission"
            and s
        ),
        "WaitingForAdmission",
        timeout=60,
    )
    assert status["phase"] == "Pending" and "team-a" in status["message"]

    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:  # the operator's reconciles leave it suspended
        current = cluster.job("queued-gen")
        assert current is not None and current["spec"]["suspend"] is True
        assert cluster.pods_of("queued-gen") == []
        time.sleep(0.5)

    admit(cluster, "queued-gen")
    status = cluster.wait_phase("RolloutJob", "queued", "Succeeded", timeout=240)
    assert status["progress"]["completed"] + status["progress"]["failed"] == 8
    flips = [
        body for body in operator_writes(cluster, "jobs", "queued-gen")
        if (body.get("spec") or {}).get("suspend") is False
    ]  # fmt: skip
    assert flips == []


def test_user_suspend_still_suspends_a_queued_job_and_resume_leaves_it_to_kueue(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    body = world.rolloutjob("held", tasks=4)
    body["metadata"]["labels"] = {QUEUE: "team-a"}
    cluster.create(body)
    wait_for(lambda: cluster.job("held-gen"), "the generator Job", timeout=60)
    admit(cluster, "held-gen")
    cluster.patch_spec("RolloutJob", "held", {"suspend": True})
    cluster.wait_phase("RolloutJob", "held", "Suspended", timeout=60)
    assert (cluster.job("held-gen") or {})["spec"]["suspend"] is True

    cluster.patch_spec("RolloutJob", "held", {"suspend": False})
    status = wait_for(
        lambda: (
            (s := cluster.status("RolloutJob", "held")).get("reason") == "WaitingForAdmission" and s
        ),
        "WaitingForAdmission after the resume",
        timeout=60,
    )
    assert status["phase"] == "Pending"
    assert (cluster.job("held-gen") or {})["spec"]["suspend"] is True  # Kueue's to admit
    admit(cluster, "held-gen")
    cluster.wait_phase("RolloutJob", "held", "Succeeded", timeout=240)

"""A real operator process reconciles RolloutJobs on the emulator: children, status, cleanup."""

from __future__ import annotations

from clusterkit import Cluster, Operator, rolloutjob, wait_for


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status.get("conditions") or []}


def timer_runs(operator: Operator) -> float:
    """How many times the RolloutJob timer has run in the operator."""
    series = 'gymops_operator_reconcile_seconds_count{handler="timer",kind="RolloutJob"} '
    for line in operator.metrics().splitlines():
        if line.startswith(series):
            return float(line.split()[-1])
    return 0.0


def assert_no_writes_while_idle(cluster: Cluster, operator: Operator, name: str) -> None:
    """Status is written only when it changes: several timer runs leave the object as it is."""
    wait_for(
        lambda: cluster.status("RolloutJob", name).get("reason") == "PodsPending",
        "the first timer run's status",
    )
    before = cluster.get("RolloutJob", name)["metadata"]["resourceVersion"]
    start = timer_runs(operator)
    wait_for(lambda: timer_runs(operator) >= start + 3, "three more timer runs")
    assert cluster.get("RolloutJob", name)["metadata"]["resourceVersion"] == before


def test_success_creates_adopted_children_and_reaches_succeeded(
    cluster: Cluster, operator: Operator
) -> None:
    created = cluster.create(rolloutjob("run1"))
    uid = created["metadata"]["uid"]
    status = cluster.wait_phase("RolloutJob", "run1", "Pending")
    assert status["observedGeneration"] == 1
    assert status["output"] == {"uri": "s3://bucket/rollouts/run1/"}
    assert conditions(status)["Pending"]["status"] == "True"

    children = cluster.children(uid)
    assert sorted(children) == ["ConfigMap", "Deployment", "Job", "Service"]
    for items in children.values():
        (ref,) = items[0]["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "RolloutJob",
            "name": "run1",
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    job = children["Job"][0]
    assert job["metadata"]["name"] == "run1-gen"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 2
    assert children["Deployment"][0]["metadata"]["name"] == "run1-verifier"

    assert_no_writes_while_idle(cluster, operator, "run1")

    cluster.start_pods("run1-gen")
    status = cluster.wait_phase("RolloutJob", "run1", "Running")
    assert status["startTime"]
    assert conditions(status)["Running"]["status"] == "True"
    assert conditions(status)["Pending"]["status"] == "False"

    cluster.complete_job("run1-gen")
    status = cluster.wait_phase("RolloutJob", "run1", "Succeeded")
    assert status["completionTime"] >= status["startTime"]
    assert conditions(status)["Complete"]["status"] == "True"
    assert conditions(status)["Running"]["status"] == "False"
    assert status["output"]["manifest"] == "s3://bucket/rollouts/run1/_SUCCESS"
    wait_for(lambda: "Deployment" not in cluster.children(uid), "the verifier to be deleted")
    assert "Service" not in cluster.children(uid)
    reasons = cluster.event_reasons("run1")
    assert "ChildrenCreated" in reasons and "JobComplete" in reasons
    assert len(reasons) <= 4, reasons  # phase moves only, no per-tick log events
    metrics = operator.metrics()
    assert 'gymops_operator_resources{kind="RolloutJob",phase="Succeeded"} 1.0' in metrics
    assert 'gymops_operator_children_created_total{child="Job"} 1.0' in metrics
    assert "gymops_operator_job_duration_seconds_count" in metrics
    assert 'gymops_operator_reconcile_seconds_count{handler="timer",kind="RolloutJob"}' in metrics


def test_failed_shard_is_retried_then_a_failed_job_fails_the_resource(
    cluster: Cluster, operator: Operator
) -> None:
    uid = cluster.create(rolloutjob("run2"))["metadata"]["uid"]
    first, second = cluster.start_pods("run2-gen")
    cluster.wait_phase("RolloutJob", "run2", "Running")

    why = "shard 1: endpoint unavailable: 50 rollouts in a row failed (connection x50)"
    cluster.set_pod_phase(second, "Failed", exit=(5, why))
    job = cluster.job("run2-gen")
    assert job is not None
    retry = cluster.run_pod(job, 1)
    cluster.set_job_status("run2-gen", {"active": 2, "failed": 1})
    wait_for(
        lambda: "1 failed attempt(s) retried" in cluster.status("RolloutJob", "run2")["message"],
        "the retry to show in status.message",
    )
    running = cluster.status("RolloutJob", "run2")
    assert running["phase"] == "Running"
    assert f"last: {second} (shard 1) exited: {why}" in running["message"]

    cluster.set_pod_phase(retry, "Failed")
    cluster.fail_job("run2-gen", "FailedIndexes", "Job has failed indexes", "1")
    status = cluster.wait_phase("RolloutJob", "run2", "Failed")
    assert status["reason"] == "JobFailed"
    assert "FailedIndexes" in status["message"] and "failed shards: 1" in status["message"]
    assert f"kubectl logs pod/{retry}" in status["message"]
    assert conditions(status)["Failed"]["status"] == "True"
    wait_for(lambda: "Deployment" not in cluster.children(uid), "the verifier to be deleted")
    assert {p["metadata"]["name"] for p in cluster.children(uid).get("Pod", [])} == set()
    assert retry in {p["metadata"]["name"] for p in cluster.pods_of("run2-gen")}
    assert first


def test_stuck_pod_reason_is_lifted_into_status_and_events(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.create(rolloutjob("run3"))
    job = wait_for(lambda: cluster.job("run3-gen"), "the generator Job")
    pod = cluster.run_pod(job, 0, phase="Pending")
    cluster.set_pod_phase(pod, "Pending", waiting="ImagePullBackOff")

    def lifted() -> dict | None:
        status = cluster.status("RolloutJob", "run3")
        return status if status.get("reason") == "ImagePullBackOff" else None

    status = wait_for(lifted, "ImagePullBackOff in status")
    assert status["phase"] == "Pending"
    assert status["message"].startswith(f"ImagePullBackOff on {pod} (shard 0)")
    wait_for(lambda: "ImagePullBackOff" in cluster.event_reasons("run3"), "a Warning event")
    warning = [e for e in cluster.events("run3") if e["reason"] == "ImagePullBackOff"][0]
    assert warning["type"] == "Warning"


def test_suspend_and_resume(cluster: Cluster, operator: Operator) -> None:
    cluster.create(rolloutjob("run4"))
    cluster.start_pods("run4-gen")
    cluster.wait_phase("RolloutJob", "run4", "Running")

    cluster.patch_spec("RolloutJob", "run4", {"suspend": True})
    wait_for(lambda: (cluster.job("run4-gen") or {})["spec"]["suspend"] is True, "Job suspended")
    status = cluster.wait_phase("RolloutJob", "run4", "Suspended")
    assert conditions(status)["Suspended"]["status"] == "True"
    assert "SpecAccepted" not in conditions(status)

    cluster.patch_spec("RolloutJob", "run4", {"suspend": False})
    wait_for(lambda: (cluster.job("run4-gen") or {})["spec"]["suspend"] is False, "Job resumed")
    status = cluster.wait_phase("RolloutJob", "run4", "Running")
    assert conditions(status)["Suspended"]["status"] == "False"
    assert status["observedGeneration"] == 3


def test_spec_change_while_running_is_refused(cluster: Cluster, operator: Operator) -> None:
    cluster.create(rolloutjob("run5"))
    cluster.start_pods("run5-gen")
    cluster.wait_phase("RolloutJob", "run5", "Running")

    cluster.patch_spec("RolloutJob", "run5", {"parallelism": 4, "ttlSecondsAfterFinished": 600})

    def refused() -> dict | None:
        cond = conditions(cluster.status("RolloutJob", "run5")).get("SpecAccepted")
        return cond if cond and cond["status"] == "False" else None

    cond = wait_for(refused, "the SpecAccepted=False condition")
    assert cond["reason"] == "SpecChangeRefused"
    assert "spec.parallelism" in cond["message"] and "ttl" not in cond["message"]
    assert "SpecChangeRefused" in cluster.event_reasons("run5")
    job = cluster.job("run5-gen")
    assert job is not None and job["spec"]["completions"] == 2

    cluster.patch_spec("RolloutJob", "run5", {"parallelism": 2})
    wait_for(
        lambda: (
            conditions(cluster.status("RolloutJob", "run5"))["SpecAccepted"]["status"] == "True"
        ),
        "the change to be accepted after reverting",
    )


def test_deletion_mid_run_removes_every_child(cluster: Cluster, operator: Operator) -> None:
    uid = cluster.create(rolloutjob("run6"))["metadata"]["uid"]
    cluster.start_pods("run6-gen")
    cluster.wait_phase("RolloutJob", "run6", "Running")
    assert sorted(cluster.children(uid)) == ["ConfigMap", "Deployment", "Job", "Service"]

    cluster.delete("RolloutJob", "run6")
    wait_for(lambda: not cluster.exists("RolloutJob", "run6"), "the RolloutJob to go")
    assert cluster.children(uid) == {}
    assert cluster.pods_of("run6-gen") == []
    operator.healthy()


def test_ttl_deletes_a_finished_job(cluster: Cluster, operator: Operator) -> None:
    cluster.create(rolloutjob("run7", ttlSecondsAfterFinished=1))
    cluster.start_pods("run7-gen")
    cluster.complete_job("run7-gen")
    cluster.wait_phase("RolloutJob", "run7", "Succeeded")
    wait_for(lambda: not cluster.exists("RolloutJob", "run7"), "TTL deletion", timeout=15)

"""RolloutJobs on the real control plane: the operator's children, run by the real Job controller
and the node agent's real `gymops` processes, take the resource through its phases."""

from __future__ import annotations

from clusterkit import (
    JOB_INDEX,
    Cluster,
    Operator,
    World,
    assert_status_survived,
    rolloutjob,
    wait_for,
)

from gym_operator.data.reader import GroupReader
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.testing.loopback import free_port

OWNER_KEYS = {"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status.get("conditions") or []}


def timer_runs(operator: Operator) -> float:
    """How many times the RolloutJob timer has run in the operator."""
    series = 'gymops_operator_reconcile_seconds_count{handler="timer",kind="RolloutJob"} '
    for line in operator.metrics().splitlines():
        if line.startswith(series):
            return float(line.split()[-1])
    return 0.0


def rows(world: World, prefix: str) -> list[dict]:
    """Every committed rollout row under s3://bucket/prefix, read as the dataset builder does."""
    store = Storage(S3Settings(endpoint_url=world.s3_url, region="us-east-1"))
    try:
        reader = GroupReader(store, [f"s3://{world.bucket}/{prefix}"])
        return [row for group in reader.groups() for row in group.rollouts]
    finally:
        store.close()


def test_real_shards_take_a_rolloutjob_to_succeeded(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    tasks, repeats = 6, 2
    created = cluster.create(world.rolloutjob("run1", tasks=tasks))
    uid = created["metadata"]["uid"]

    children = wait_for(
        lambda: (found := cluster.children(uid)) and len(found) >= 4 and found,
        "the ConfigMap, Deployment, Service and Job",
    )
    for items in children.values():
        (ref,) = items[0]["metadata"]["ownerReferences"]
        assert set(ref) == OWNER_KEYS and ref["uid"] == uid and ref["controller"] is True
    job = children["Job"][0]
    assert job["metadata"]["name"] == "run1-gen"
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2

    running = cluster.wait_phase("RolloutJob", "run1", "Running")
    assert running["startTime"] and conditions(running)["Ready"]["status"] == "True"
    status = cluster.wait_phase("RolloutJob", "run1", "Succeeded", timeout=180)
    assert status["completionTime"] >= status["startTime"]
    assert status["observedGeneration"] == 1
    assert conditions(status)["Complete"]["status"] == "True"
    assert conditions(status)["Ready"]["status"] == "False"
    assert status["progress"]["total"] == tasks * repeats
    assert status["progress"]["completed"] + status["progress"]["failed"] == tasks * repeats
    assert status["rewards"]["passRate"] == 0.5
    assert status["output"]["manifest"] == f"s3://{world.bucket}/rollouts/run1/_SUCCESS"

    # The Job controller ran one pod per completion index, each to success.
    pods = cluster.pods_of("run1-gen")
    assert sorted(p["metadata"]["annotations"][JOB_INDEX] for p in pods) == ["0", "1"]
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    written = rows(world, "rollouts/run1/")
    identities = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in written]
    assert sorted(identities) == [(t, r) for t in range(tasks) for r in range(repeats)]

    wait_for(lambda: "Deployment" not in cluster.children(uid), "the verifier to be deleted")
    assert "Service" not in cluster.children(uid)
    reasons = cluster.event_reasons("run1")
    assert "ChildrenCreated" in reasons and "JobComplete" in reasons
    metrics = operator.metrics()
    assert 'gymops_operator_resources{kind="RolloutJob",phase="Succeeded"} 1.0' in metrics
    assert 'gymops_operator_children_created_total{child="Job"} 1.0' in metrics
    assert cluster.creations("jobs", "run1-gen") == 1
    assert_status_survived(cluster, "RolloutJob", "run1")


def test_a_stuck_pod_is_lifted_into_status_and_idle_timers_write_nothing(
    cluster: Cluster, operator: Operator
) -> None:
    template = {"image": "registry.invalid/no-such-image:1"}
    cluster.create(rolloutjob("run3", template=template, parallelism=1))

    def lifted() -> dict | None:
        status = cluster.status("RolloutJob", "run3")
        return status if status.get("reason") == "ImagePullBackOff" else None

    status = wait_for(lifted, "ImagePullBackOff in status")
    assert status["phase"] == "Pending"
    assert status["message"].startswith("ImagePullBackOff on run3-")
    assert "registry.invalid/no-such-image:1" in status["message"]
    wait_for(lambda: "ImagePullBackOff" in cluster.event_reasons("run3"), "a Warning event")
    warning = [e for e in cluster.events("run3") if e["reason"] == "ImagePullBackOff"][0]
    assert warning["type"] == "Warning"

    before = cluster.get("RolloutJob", "run3")["metadata"]["resourceVersion"]
    start = timer_runs(operator)
    wait_for(lambda: timer_runs(operator) >= start + 3, "three more timer runs")
    assert cluster.get("RolloutJob", "run3")["metadata"]["resourceVersion"] == before


def test_an_endpoint_down_shard_is_retried_then_its_index_fails_the_job(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    closed = free_port()  # nothing listens there, in the pod's network or anywhere
    body = world.rolloutjob(
        "run2",
        tasks=2,
        parallelism=1,
        backoffLimitPerIndex=1,
        policy={"baseURL": f"http://127.0.0.1:{closed}/v1", "model": "stub"},
        retry={"endpointFailureLimit": 1, "endpointWaitSeconds": 0, "maxAttempts": 1},
    )
    uid = cluster.create(body)["metadata"]["uid"]
    status = cluster.wait_phase("RolloutJob", "run2", "Failed", timeout=180)
    assert status["reason"] == "JobFailed"
    assert "failed shards: 0" in status["message"]
    pods = cluster.pods_of("run2-gen")
    assert len(pods) == 2, "the index is retried once (backoffLimitPerIndex 1), then failed"
    for pod in pods:
        (container,) = pod["status"]["containerStatuses"]
        terminated = container["state"]["terminated"]
        assert terminated["exitCode"] == 5
        assert "endpoint" in terminated["message"]
    last = max(pods, key=lambda p: p["metadata"]["creationTimestamp"])["metadata"]["name"]
    assert f"kubectl logs pod/{last}" in status["message"] or "kubectl logs" in status["message"]
    assert conditions(status)["Failed"]["status"] == "True"
    wait_for(lambda: "Deployment" not in cluster.children(uid), "the verifier to be deleted")


def test_a_bad_input_fails_its_index_at_once(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    body = world.rolloutjob(
        "run8", parallelism=1, input={"uri": f"s3://{world.bucket}/no/such/tasks.jsonl"}
    )
    cluster.create(body)
    status = cluster.wait_phase("RolloutJob", "run8", "Failed", timeout=120)
    assert "failed shards: 0" in status["message"]
    (pod,) = cluster.pods_of("run8-gen")  # exit 2: podFailurePolicy FailIndex, no retry
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 2 and "not found" in terminated["message"]
    job = cluster.job("run8-gen")
    assert job is not None and job["status"].get("failedIndexes") == "0"


def test_suspend_stops_the_pods_and_resume_finishes_exactly_once(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    world.stub.config.latency = 3.0
    tasks, repeats = 6, 2
    cluster.create(
        world.rolloutjob("run4", tasks=tasks, sampling={"numRepeats": 2, "concurrency": 1})
    )
    # each shard's limit (concurrency 1) reaches status once it committed a part (2 rows)
    limit = wait_for(
        lambda: cluster.status("RolloutJob", "run4").get("progress", {}).get("concurrencyLimit"),
        "status.progress.concurrencyLimit",
        timeout=120,
    )
    assert limit in (1, 2)  # one per running shard
    header, row = cluster.kubectl("get", "rj", "run4", "-o", "wide").stdout.splitlines()[:2]
    at = header.index(
        "CONCURRENCY"
    )  # kubectl aligns each value under its header; cells may be empty
    assert row[at:].split()[0] in ("1", "2"), (header, row)
    cluster.patch_spec("RolloutJob", "run4", {"suspend": True})
    status = cluster.wait_phase("RolloutJob", "run4", "Suspended")
    assert conditions(status)["Suspended"]["status"] == "True"
    status = wait_for(
        lambda: (
            (s := cluster.status("RolloutJob", "run4"))
            and "concurrencyLimit" not in s.get("progress", {})
            and s
        ),
        "no concurrency limit while suspended",
    )
    wait_for(lambda: cluster.pods_of("run4-gen") == [], "the Job controller to remove the pods")

    world.stub.config.latency = 0.0
    cluster.patch_spec("RolloutJob", "run4", {"suspend": False})
    status = cluster.wait_phase("RolloutJob", "run4", "Succeeded", timeout=180)
    assert conditions(status)["Suspended"]["status"] == "False"
    assert status["observedGeneration"] == 3
    identities = [
        (r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows(world, "rollouts/run4/")
    ]
    assert sorted(identities) == [(t, r) for t in range(tasks) for r in range(repeats)]
    assert cluster.creations("jobs", "run4-gen") == 1


def test_spec_change_while_running_is_refused(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    world.stub.config.latency = 2.0
    cluster.create(world.rolloutjob("run5", sampling={"numRepeats": 2, "concurrency": 1}))
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


def test_deletion_mid_run_removes_every_child_and_stops_the_pods(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    world.stub.config.latency = 2.0
    uid = cluster.create(world.rolloutjob("run6", sampling={"numRepeats": 2, "concurrency": 1}))[
        "metadata"
    ]["uid"]
    cluster.wait_phase("RolloutJob", "run6", "Running")
    assert sorted(cluster.children(uid)) == ["ConfigMap", "Deployment", "Job", "Service"]

    cluster.delete("RolloutJob", "run6")
    wait_for(lambda: not cluster.exists("RolloutJob", "run6"), "the RolloutJob to go")
    wait_for(lambda: cluster.children(uid) == {}, "the garbage collector to remove the children")
    wait_for(lambda: cluster.pods_of("run6-gen") == [], "the generator pods to stop", timeout=90)
    assert operator.healthy()


def test_ttl_removes_a_finished_rolloutjob_and_the_gc_its_children(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    uid = cluster.create(world.rolloutjob("run7", tasks=2, ttlSecondsAfterFinished=1))["metadata"][
        "uid"
    ]
    cluster.wait_phase("RolloutJob", "run7", "Succeeded", timeout=180)
    wait_for(lambda: not cluster.exists("RolloutJob", "run7"), "TTL deletion", timeout=60)
    wait_for(lambda: cluster.children(uid) == {}, "the garbage collector", timeout=90)

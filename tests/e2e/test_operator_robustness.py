"""The operator survives restarts and bad resources, and serves what kubectl applies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from clusterkit import Cluster, Operator, rolloutjob, wait_for

KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def kubectl(*args: str) -> str:
    """kubectl's stdout; fails the test when kubectl fails."""
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def job_creations(cluster: Cluster, name: str) -> int:
    """How many times the emulator saw a Job of this name created."""

    def count(emulator: object) -> int:
        events = emulator._events  # type: ignore[attr-defined]
        return sum(
            1
            for _, key, type_, obj in events
            if key.plural == "jobs" and type_ == "ADDED" and obj["metadata"]["name"] == name
        )

    return int(cluster.emulator.call(count))


def test_operator_restart_mid_run_resumes_without_duplicates(
    cluster: Cluster, operator: Operator
) -> None:
    uid = cluster.create(rolloutjob("restart1"))["metadata"]["uid"]
    cluster.start_pods("restart1-gen")
    cluster.wait_phase("RolloutJob", "restart1", "Running")
    operator.kill()

    cluster.complete_job("restart1-gen")
    operator.start()
    status = cluster.wait_phase("RolloutJob", "restart1", "Succeeded")
    assert status["completionTime"]
    assert job_creations(cluster, "restart1-gen") == 1
    children = cluster.children(uid)
    assert len(children["Job"]) == 1 and len(children["ConfigMap"]) == 1
    assert 'gymops_operator_children_created_total{child="Job"}' not in operator.metrics()


def test_invalid_spec_fails_the_resource_and_the_operator_keeps_running(
    cluster: Cluster, operator: Operator
) -> None:
    bad = rolloutjob("bad1", parallelism=0, sampling={"numRepeat": 2})
    uid = cluster.create(bad)["metadata"]["uid"]
    status = cluster.wait_phase("RolloutJob", "bad1", "Failed")
    assert status["reason"] == "InvalidSpec"
    assert "spec.parallelism" in status["message"]
    assert "spec.sampling.numRepeat" in status["message"]
    assert status["conditions"][0]["type"] == "Failed"
    wait_for(lambda: "InvalidSpec" in cluster.event_reasons("bad1"), "an InvalidSpec event")
    (warning,) = [e for e in cluster.events("bad1") if e["reason"] == "InvalidSpec"]
    assert warning["type"] == "Warning" and "spec.parallelism" in warning["message"]
    assert cluster.children(uid) == {}

    fixed = {"parallelism": 2, "sampling": {"numRepeat": None, "numRepeats": 2}}
    cluster.patch_spec("RolloutJob", "bad1", fixed)
    status = cluster.wait_phase("RolloutJob", "bad1", "Pending")
    assert "completionTime" not in status
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Failed": "False",
        "Pending": "True",
    }
    assert wait_for(lambda: cluster.job("bad1-gen"), "the Job of the corrected spec")

    cluster.create(rolloutjob("good1"))
    cluster.wait_phase("RolloutJob", "good1", "Pending")
    assert cluster.job("good1-gen") is not None
    assert operator.healthy()
    metrics = operator.metrics()
    assert (
        'gymops_operator_reconcile_errors_total{handler="create",kind="RolloutJob"} 1.0' in metrics
    )


def test_kubectl_apply_creates_a_served_rolloutjob(
    cluster: Cluster, operator: Operator, tmp_path: Path
) -> None:
    manifest = tmp_path / "rj.yaml"
    manifest.write_text(yaml.safe_dump(rolloutjob("applied1", parallelism=3)))
    base = [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "-n", cluster.namespace]
    # The emulator serves no OpenAPI and validates no schema (tests/controller covers that).
    applied = subprocess.run(
        [*base, "apply", "--validate=false", "-f", str(manifest)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert "rolloutjob.gymops.dev/applied1 created" in applied.stdout
    job = wait_for(lambda: cluster.job("applied1-gen"), "the generator Job")
    assert job["spec"]["completions"] == 3

    phase = subprocess.run(
        [*base, "get", "rj", "applied1", "-o", "jsonpath={.status.phase}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert phase.stdout in ("Pending", "Running"), phase.stderr
    cluster.start_pods("applied1-gen")
    cluster.wait_phase("RolloutJob", "applied1", "Running")
    table = kubectl(*base, "get", "rj", "applied1")
    header, row = table.splitlines()
    assert header.split() == ["NAME", "PHASE", "PROGRESS", "ROLLOUTS/S", "REWARD", "AGE"]
    assert row.split()[:3] == ["applied1", "Running", "0/20"]
    listed = subprocess.run(
        [*base, "get", "gymops", "-o", "name"], capture_output=True, text=True, timeout=60
    )
    assert "rolloutjob.gymops.dev/applied1" in listed.stdout, listed.stderr


def test_a_namespaced_operator_leaves_other_namespaces_alone(
    cluster: Cluster, operator: Operator
) -> None:
    cluster.core.create_namespace({"metadata": {"name": "elsewhere"}})
    other = rolloutjob("other1")
    cluster.custom.create_namespaced_custom_object(
        "gymops.dev", "v1alpha1", "elsewhere", "rolloutjobs", other
    )
    cluster.create(rolloutjob("mine1"))
    cluster.wait_phase("RolloutJob", "mine1", "Pending")
    theirs = cluster.custom.get_namespaced_custom_object(
        "gymops.dev", "v1alpha1", "elsewhere", "rolloutjobs", "other1"
    )
    assert "status" not in theirs
    assert cluster.raw_list("/apis/batch/v1/namespaces/elsewhere/jobs") == []

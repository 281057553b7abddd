"""`kubectl gymops` (the kubectl-gymops command) against the API: status, watch and logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from clusterkit import Cluster, Operator, rolloutjob


def plugin(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "gym_operator.cli_kubectl",
            "--kubeconfig", str(cluster.kubeconfig), "-n", cluster.namespace, *args,
        ],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_status_watch_and_logs_follow_a_job_to_its_end(
    cluster: Cluster, operator: Operator, tmp_path: Path
) -> None:
    cluster.create(rolloutjob("plug"))
    cluster.wait_phase("RolloutJob", "plug", "Pending")
    status = plugin(cluster, "status", "plug")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Pending" in status.stdout and "condition Pending" in status.stdout

    watch = subprocess.Popen(
        [
            sys.executable, "-m", "gym_operator.cli_kubectl",
            "--kubeconfig", str(cluster.kubeconfig), "-n", cluster.namespace,
            "watch", "plug", "--interval", "0.2",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    cluster.start_pods("plug-gen")
    cluster.wait_phase("RolloutJob", "plug", "Running")
    logs = plugin(cluster, "logs", "plug")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert "shard 0" in logs.stdout and "shard 1" in logs.stdout
    cluster.complete_job("plug-gen")
    out, _ = watch.communicate(timeout=60)
    assert watch.returncode == 0, out
    phases = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert phases[-1] == "Succeeded" and "Running" in phases

    missing = plugin(cluster, "status", "nope")
    assert missing.returncode == 2 and "not found" in missing.stdout

"""`kubectl gymops` (the kubectl-gymops command) against the API: status, watch and logs."""

from __future__ import annotations

import os
import subprocess
import sys

from clusterkit import Cluster, Operator, World


def plugin(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "gym_operator.cli_kubectl",
            "--kubeconfig", str(cluster.kubeconfig), "-n", cluster.namespace, *args,
        ],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def test_status_and_watch_follow_a_real_job_to_its_end(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    """The node agent serves no pod logs (no kubelet API), so `logs` is not exercised here."""
    cluster.create(world.rolloutjob("plug", tasks=2))
    watch = subprocess.Popen(
        [
            sys.executable, "-m", "gym_operator.cli_kubectl",
            "--kubeconfig", str(cluster.kubeconfig), "-n", cluster.namespace,
            "watch", "plug", "--interval", "0.2",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    cluster.wait_phase("RolloutJob", "plug", "Succeeded", timeout=180)
    out, _ = watch.communicate(timeout=120)
    assert watch.returncode == 0, out
    phases = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert phases[-1] == "Succeeded", out

    status = plugin(cluster, "status", "plug")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Succeeded" in status.stdout

    missing = plugin(cluster, "status", "nope")
    assert missing.returncode == 2 and "not found" in missing.stdout

"""The real `gymops generate` runs two shards of an operator-made Job; status shows real progress.

The test plays the kubelet: it runs each pod's container command (from the Job the operator made,
with the spec from the ConfigMap the operator made) as a local process, against moto S3, the stub
model and the built-in math verifier, all on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
from clusterkit import Cluster, Operator, rolloutjob, wait_for

from gym_operator.testing.loopback import run_in_thread
from gym_operator.testing.stub_model import StubModel, serve_in_thread

TASKS = 6
REPEATS = 2


def math_task(i: int) -> dict[str, Any]:
    """The stub answers i + (i + 1), and one more for odd seeds (so half the repeats fail)."""
    return {
        "responses_create_params": {
            "input": [{"role": "user", "content": f"What is {i} + {i + 1}?"}]
        },
        "expected_answer": str(2 * i + 1),
    }


def math_verifier() -> AbstractContextManager[str]:
    """The built-in math verifier server on loopback; yields its URL."""
    from gym_operator.verify.server import VerifierSettings, start_server

    settings = VerifierSettings(builtin="math", workers=1)
    return run_in_thread(lambda: start_server(settings), name="verifier")


def pod_command(job: dict[str, Any], spec_path: Path, verifier_url: str) -> tuple[list[str], dict]:
    """The generator container's command and plain env, pointed at local files and servers."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = [str(spec_path) if a == "/etc/gymops/spec.json" else a for a in container["args"]]
    args[args.index("--verifier-url") + 1] = verifier_url
    args[args.index("--metrics-port") + 1] = "0"  # pods have a port each; local processes do not
    command = [str(Path(sys.executable).with_name(container["command"][0])), *args]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    return command, env


def test_two_real_shards_report_progress_and_succeed(
    cluster: Cluster, operator: Operator, s3_bucket: str, s3_env: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_env)
    rows = "".join(json.dumps(math_task(i)) + "\n" for i in range(TASKS))
    s3.put_object(Bucket=s3_bucket, Key="tasks.jsonl", Body=rows.encode())
    output = f"s3://{s3_bucket}/rollouts/real/"

    with serve_in_thread(StubModel()) as model_url, math_verifier() as verifier_url:
        body = rolloutjob(
            "real",
            input={"uri": f"s3://{s3_bucket}/tasks.jsonl"},
            policy={"baseURL": model_url, "model": "stub"},
            sampling={"numRepeats": REPEATS, "concurrency": 4},
            output={"uri": output, "partRows": 2},
            s3={"endpointURL": s3_env, "region": "us-east-1"},
            parallelism=2,
        )
        cluster.create(body)
        job = wait_for(lambda: cluster.job("real-gen"), "the generator Job")
        configmap = cluster.core.read_namespaced_config_map("real-spec", cluster.namespace)
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(configmap.data["spec.json"])
        pods = cluster.start_pods("real-gen")
        cluster.wait_phase("RolloutJob", "real", "Running")

        command, pod_env = pod_command(job, spec_path, verifier_url)
        assert pod_env["AWS_ENDPOINT_URL"] == s3_env
        procs = [
            subprocess.Popen(
                command,
                env={**os.environ, **pod_env, "JOB_COMPLETION_INDEX": str(index)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for index in range(2)
        ]
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out.decode(errors="replace")[-3000:]

    def all_counted() -> dict | None:
        status = cluster.status("RolloutJob", "real")
        progress = status.get("progress") or {}
        done = progress.get("completed", 0) + progress.get("failed", 0)
        return status if done == TASKS * REPEATS else None

    status = wait_for(all_counted, "progress of every rollout in status")
    assert status["phase"] == "Running"
    assert status["progress"]["total"] == TASKS * REPEATS
    assert status["progress"]["percent"] == 100.0
    assert status["progress"]["summary"] == f"{TASKS * REPEATS}/{TASKS * REPEATS}"
    assert status["rewards"]["passRate"] == 0.5

    for pod in pods:
        cluster.set_pod_phase(pod, "Succeeded")
    cluster.complete_job("real-gen")
    status = cluster.wait_phase("RolloutJob", "real", "Succeeded")
    assert status["progress"]["completed"] + status["progress"]["failed"] == TASKS * REPEATS
    assert status["output"]["manifest"] == f"{output}_SUCCESS"
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="rollouts/real/")["Contents"]
    assert {o["Key"] for o in listed} >= {
        "rollouts/real/shard-00000/_manifest.json",
        "rollouts/real/shard-00001/_manifest.json",
    }

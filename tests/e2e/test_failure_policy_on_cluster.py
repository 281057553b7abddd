"""A RolloutJob whose endpoint answers garbage ends Failed, with the reason its generator gave.

The test plays the kubelet as test_real_generator does: it runs each shard's real `gymops
generate` command against a stub model that answers every request with a body that is not JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
from clusterkit import Cluster, Operator, rolloutjob, wait_for
from test_real_generator import math_task, math_verifier, pod_command

from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

TASKS = 4
EXIT_TOO_MANY_FAILURES = 6


def test_a_job_over_its_failure_policy_ends_failed_with_the_reason(
    cluster: Cluster, operator: Operator, s3_bucket: str, s3_env: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_env)
    rows = "".join(json.dumps(math_task(i)) + "\n" for i in range(TASKS))
    s3.put_object(Bucket=s3_bucket, Key="tasks.jsonl", Body=rows.encode())
    output = f"s3://{s3_bucket}/rollouts/garbage/"
    garbage = StubModel(StubConfig(rate_malformed=1.0))
    with serve_in_thread(garbage) as model_url, math_verifier() as verifier_url:
        cluster.create(
            rolloutjob(
                "garbage",
                input={"uri": f"s3://{s3_bucket}/tasks.jsonl"},
                policy={"baseURL": model_url, "model": "stub"},
                sampling={"numRepeats": 2, "concurrency": 4},
                output={"uri": output, "partRows": 2},
                s3={"endpointURL": s3_env, "region": "us-east-1"},
                retry={"maxAttempts": 2, "backoffBaseSeconds": 0.01, "backoffMaxSeconds": 0.05},
                parallelism=2,
            )
        )
        job = wait_for(lambda: cluster.job("garbage-gen"), "the generator Job")
        configmap = cluster.core.read_namespaced_config_map("garbage-spec", cluster.namespace)
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(configmap.data["spec.json"])
        pods = cluster.start_pods("garbage-gen")
        command, pod_env = pod_command(job, spec_path, verifier_url)
        results = []
        for index in range(2):  # one after the other: the second shard finishes the job
            log = tmp_path / f"termination-{index}"
            log.touch()  # the kubelet provides the file; the worker only writes into it
            done = subprocess.run(
                [*command, "--termination-log", str(log)],
                env={**os.environ, **pod_env, "JOB_COMPLETION_INDEX": str(index)},
                capture_output=True,
                timeout=180,
            )
            results.append((done.returncode, log.read_text() if log.exists() else ""))
    assert results[0][0] == 0, results
    code, reason = results[1]
    assert code == EXIT_TOO_MANY_FAILURES, results
    assert "8 of 8 rollouts failed" in reason and "malformed x8" in reason

    cluster.set_pod_phase(pods[0], "Succeeded")
    cluster.set_pod_phase(pods[1], "Failed", exit=(code, reason))
    cluster.fail_job("garbage-gen", "PodFailurePolicy", "exit code 6", "1")
    status = cluster.wait_phase("RolloutJob", "garbage", "Failed", timeout=60)
    assert "8 of 8 rollouts failed" in status["message"], status
    failed = [c for c in status["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "TooManyFailedRollouts", status["conditions"]
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="rollouts/garbage/")["Contents"]
    keys = {o["Key"] for o in listed}
    assert "rollouts/garbage/_SUCCESS" not in keys
    assert "rollouts/garbage/shard-00001/_manifest.json" in keys

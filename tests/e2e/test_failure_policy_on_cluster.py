"""spec.failurePolicy on the real control plane: a job whose rollouts mostly failed ends Failed
with the generators' reason and no _SUCCESS; a job with a few failures still succeeds."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from clusterkit import Cluster, Operator, World, math_task

from gym_operator.rollout.output import CommittedOutput, read_committed
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri

GARBAGE = " #fault:malformedx99"
"""The stub answers a 200 whose body is not JSON to every attempt at such a prompt."""
FAST_RETRIES = {"maxAttempts": 2, "backoffBaseSeconds": 0.01, "backoffMaxSeconds": 0.05}


def tasks(world: World, name: str, count: int, garbage: set[int]) -> str:
    """`count` math tasks in the world's bucket, those in `garbage` answered with garbage."""
    rows = []
    for i in range(count):
        row: dict[str, Any] = math_task(i)
        if i in garbage:
            row["responses_create_params"]["input"][0]["content"] += GARBAGE
        rows.append(json.dumps(row) + "\n")
    s3 = boto3.client("s3", endpoint_url=world.s3_url, region_name="us-east-1")
    s3.put_object(Bucket=world.bucket, Key=f"policy-tasks/{name}.jsonl", Body="".join(rows))
    return f"s3://{world.bucket}/policy-tasks/{name}.jsonl"


def committed(world: World, name: str) -> CommittedOutput:
    """The job's committed rollouts and failure rows."""
    settings = S3Settings(endpoint_url=world.s3_url, region="us-east-1")
    return read_committed(Storage(settings), parse_uri(f"s3://{world.bucket}/rollouts/{name}/"))


def success_marker(world: World, name: str) -> bool:
    """Whether the job's _SUCCESS object exists."""
    s3 = boto3.client("s3", endpoint_url=world.s3_url, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=world.bucket, Prefix=f"rollouts/{name}/_SUCCESS")
    return bool(listed.get("KeyCount"))


@pytest.mark.slow
def test_an_endpoint_answering_garbage_to_everything_fails_the_job_with_the_reason(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    body = world.rolloutjob(
        "garbage",
        input={"uri": tasks(world, "garbage", 4, garbage={0, 1, 2, 3})},
        # Every failure is recorded (the endpoint breaker would hold them as an outage).
        retry={**FAST_RETRIES, "endpointFailureLimit": 0},
    )
    cluster.create(body)
    status = cluster.wait_phase("RolloutJob", "garbage", "Failed", timeout=240)
    assert status["reason"] == "TooManyFailedRollouts"
    message = " ".join(status["message"].split())
    assert message.startswith("8 of 8 rollouts failed (100%; failurePolicy.maxFailedFraction")
    assert "malformed x8" in message
    assert not success_marker(world, "garbage")
    out = committed(world, "garbage")  # the committed rows stay
    assert (len(out.rollouts), len(out.failures)) == (0, 8)
    assert {f["failure"]["class"] for f in out.failures} == {"malformed"}
    assert "TooManyFailedRollouts" in cluster.event_reasons("garbage")


@pytest.mark.slow
def test_a_job_over_the_fraction_fails_and_one_under_it_succeeds(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    # 2 of 12 rollouts fail (17%): over the default 10%, under a policy of 25%.
    for name, policy in (("strict", {}), ("lenient", {"maxFailedFraction": 0.25})):
        body = world.rolloutjob(
            name,
            input={"uri": tasks(world, name, 6, garbage={3})},
            retry=FAST_RETRIES,
            failurePolicy={**policy, "minFinished": 4},
        )
        cluster.create(body)
    strict = cluster.wait_phase("RolloutJob", "strict", "Failed", timeout=240)
    assert strict["reason"] == "TooManyFailedRollouts"
    assert "2 of 12 rollouts failed (17%; failurePolicy.maxFailedFraction is 0.1)" in " ".join(
        strict["message"].split()
    )
    assert not success_marker(world, "strict")

    lenient = cluster.wait_phase("RolloutJob", "lenient", "Succeeded", timeout=240)
    assert (lenient["progress"]["completed"], lenient["progress"]["failed"]) == (10, 2)
    assert success_marker(world, "lenient")
    out = committed(world, "lenient")
    assert (len(out.rollouts), len(out.failures)) == (10, 2)
    assert {f["_ng_task_index"] for f in out.failures} == {3}


@pytest.mark.slow
def test_with_the_endpoint_breaker_on_all_garbage_is_an_outage_that_fails_the_job(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    body = world.rolloutjob(
        "outage",
        input={"uri": tasks(world, "outage", 4, garbage={0, 1, 2, 3})},
        retry={**FAST_RETRIES, "endpointWaitSeconds": 0},  # the breaker at its default limit
        backoffLimitPerIndex=0,
    )
    cluster.create(body)
    status = cluster.wait_phase("RolloutJob", "outage", "Failed", timeout=240)
    message = " ".join(status["message"].split())
    assert "endpoint unavailable: 4 rollouts in a row failed (malformed x4)" in message
    assert "body is not JSON" in message and "check that policy.baseURL is up" in message
    assert not success_marker(world, "outage")
    out = committed(world, "outage")  # held as an outage: sampled again on a resume
    assert (out.rollouts, out.failures) == ([], [])

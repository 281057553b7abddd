"""Verifier faults: killed and restarted mid-run, slow, answering garbage or errors. None of them
becomes a reward: each rollout gets a real verifier score or ends as a typed failure row."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faultkit import (
    TinyVerifier,
    assert_exactly_once,
    job_body,
    read_output,
    serve,
    task_row,
    write_tasks,
)

from gym_operator.api import parse_resource
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubConfig, StubModel, start

TASKS, REPEATS, ATTEMPTS = 12, 2, 3
PATIENT, IMPATIENT, SLOW = 30.0, 2.0, 60.0
"""Timeouts: PATIENT is never reached by an answer, however busy the machine; a `slow`
verifier answers after SLOW seconds, so an IMPATIENT request always times out."""


def spec_for(
    tmp_path: Path,
    base_url: str,
    ver_url: str,
    weighted: bool = False,
    concurrency: int = 4,
    **verifier: object,
):
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_row(i) for i in range(TASKS)])
    body = job_body(
        tasks,
        str(tmp_path / "out"),
        base_url,
        ver_url,
        sampling={"numRepeats": REPEATS, "concurrency": concurrency},
        verifier={"timeoutSeconds": PATIENT, "maxAttempts": ATTEMPTS, **verifier},
        reward={"components": {"acc": 1.0}} if weighted else {},
        # A verifier broken for every request would stop the shard (the endpoint breaker);
        # these tests look at the failure row each fault becomes, so the breaker is off.
        retry={
            "endpointFailureLimit": 0,
            "requestTimeoutSeconds": PATIENT,
            "maxRetrySeconds": 2 * PATIENT,
        },
    )
    return parse_resource(body).spec


@pytest.mark.parametrize(
    ("mode", "failure_class", "attempts"),
    [
        ("garbage", "verifier_malformed", ATTEMPTS),
        ("html", "verifier_malformed", ATTEMPTS),
        ("deep", "verifier_malformed", ATTEMPTS),
        ("bad_components", "verifier_malformed", ATTEMPTS),
        ("error", "verifier_http_5xx", ATTEMPTS),
        ("slow", "verifier_timeout", ATTEMPTS),
        ("unscorable", "verifier_unscorable", 1),
    ],
)
async def test_a_broken_verifier_gives_failure_rows_never_rewards(
    tmp_path: Path, mode: str, failure_class: str, attempts: int
) -> None:
    stub = StubModel()
    stub_runner, base_url = await start(stub)
    verifier = TinyVerifier()
    verifier.mode, verifier.slow_seconds = mode, SLOW
    ver_runner, ver_url = await serve(verifier.app(), shutdown_timeout=0)
    # a slow verifier costs each attempt its whole timeout: every rollout verifies at once
    slow = {"timeoutSeconds": IMPATIENT, "concurrency": TASKS * REPEATS} if mode == "slow" else {}
    try:
        spec = spec_for(tmp_path, base_url, ver_url, mode == "bad_components", **slow)
        result = await run_job(spec, shards=[0])
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()
    out = read_output(Storage(), parse_uri(str(tmp_path / "out")))
    assert_exactly_once(out, TASKS, REPEATS)
    assert out.rollouts == []
    assert len(out.failures) == TASKS * REPEATS
    assert {r["failure"]["class"] for r in out.failures} == {failure_class}
    assert {r["failure"]["attempts"] for r in out.failures} == {attempts}
    assert all("reward" not in r for r in out.failures)
    if mode == "slow":
        # An attempt may time out while it waits for a pooled connection, before it is sent.
        assert TASKS * REPEATS <= verifier.calls <= TASKS * REPEATS * attempts
    else:
        assert verifier.calls == TASKS * REPEATS * attempts
    assert stub.requests == TASKS * REPEATS  # a verifier failure never resamples the model
    (manifest,) = out.manifests
    assert (manifest.completed, manifest.failed, manifest.reward_sum) == (0, TASKS * REPEATS, 0.0)
    assert result.success


async def test_verifier_killed_and_restarted_mid_run(tmp_path: Path) -> None:
    stub = StubModel(StubConfig(latency=0.02))
    stub_runner, base_url = await start(stub)
    verifier = TinyVerifier()
    verifier.mode, verifier.slow_seconds = "slow", 0.05
    ver_runner, ver_url = await serve(verifier.app(), shutdown_timeout=0)
    port = int(ver_url.rsplit(":", 1)[1])
    spec = spec_for(tmp_path, base_url, ver_url, timeoutSeconds=PATIENT)
    try:
        job = asyncio.create_task(run_job(spec, shards=[0]))
        while verifier.calls < 8:
            await asyncio.sleep(0.005)
        await ver_runner.cleanup()  # killed: requests in flight are cut off
        down_at = verifier.calls
        await asyncio.sleep(0.4)
        ver_runner, _ = await serve(verifier.app(), port=port, shutdown_timeout=0)
        result = await asyncio.wait_for(job, 60)
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()
    out = read_output(Storage(), parse_uri(str(tmp_path / "out")))
    assert result.success
    assert_exactly_once(out, TASKS, REPEATS)
    assert verifier.calls > down_at
    # Every reward is a real score (repeat 0 right, repeat 1 wrong); a rollout whose verifier
    # never came back is a typed verifier failure, never a 0.0.
    for row in out.rollouts:
        assert row["reward"] == (1.0 if row["_ng_rollout_index"] == 0 else 0.0)
    assert all(r["failure"]["class"].startswith("verifier_") for r in out.failures)
    assert len(out.rollouts) + len(out.failures) == TASKS * REPEATS
    assert len(out.rollouts) >= TASKS * REPEATS - 8
    print(f"verifier restart: {len(out.rollouts)} rewarded, {len(out.failures)} typed failures")

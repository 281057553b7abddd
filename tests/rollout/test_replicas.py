"""policy.baseURLs: requests go to the replica with the fewest in flight, a replica that dies is
skipped while the others finish the job, and the job stops only when every replica fails."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rolloutkit import make_job, math_task, write_tasks

from gym_operator.api import RolloutJob
from gym_operator.api.loading import SpecError
from gym_operator.rollout.breaker import EndpointDown
from gym_operator.rollout.generator import ShardStats
from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import free_port
from gym_operator.testing.stub_model import StubConfig, StubModel, start

RETRY = {
    "maxAttempts": 5,
    "requestTimeoutSeconds": 10,
    "maxRetrySeconds": 60,
    "backoffBaseSeconds": 0.05,
    "backoffMaxSeconds": 0.2,
}


def _job(
    tmp_path: Path, urls: list[str], tasks: int, concurrency: int, retry: dict | None = None
) -> RolloutJob:
    output = f"file://{tmp_path}/out"
    return make_job(
        tasks_uri=str(write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(tasks)])),
        output_uri=output,
        base_url=urls[0],
        policy={"baseURLs": urls, "model": "stub"},
        sampling={"numRepeats": 2, "concurrency": concurrency},
        verifier={"builtin": "exact_match", "config": {"mode": "contains"}},
        output={"uri": output, "partSeconds": 1},
        retry={**RETRY, **(retry or {})},
    )


async def _stubs(latencies: list[float]) -> list[tuple[StubModel, object, str]]:
    out = []
    for latency in latencies:
        model = StubModel(StubConfig(latency=latency))
        runner, url = await start(model)
        out.append((model, runner, url))
    return out


async def test_the_slow_replica_gets_fewer_requests(tmp_path: Path) -> None:
    stubs = await _stubs([0.02, 0.02, 0.3])
    try:
        job = _job(tmp_path, [url for _, _, url in stubs], tasks=150, concurrency=12)
        result = await run_job(job.spec, shards=[0])
    finally:
        for _, runner, _ in stubs:
            await runner.cleanup()  # type: ignore[attr-defined]
    assert result.success
    fast_a, fast_b, slow = (model.requests for model, _, _ in stubs)
    assert fast_a + fast_b + slow == 300
    # Equal shares (round robin) would give each 100; fewest-in-flight sends the slow one few.
    assert slow < min(fast_a, fast_b) / 3, (fast_a, fast_b, slow)


async def test_a_replica_killed_mid_run_leaves_no_failure_rows(tmp_path: Path) -> None:
    stubs = await _stubs([0.05, 0.05, 0.05])
    victim = stubs[1]
    killed = asyncio.Event()

    def progress(stats: ShardStats) -> None:
        if stats.done >= 100 and not killed.is_set():
            killed.set()

    async def kill() -> int:
        await killed.wait()
        await victim[1].cleanup()  # type: ignore[attr-defined]
        return victim[0].requests

    try:
        job = _job(tmp_path, [url for _, _, url in stubs], tasks=300, concurrency=24)
        killer = asyncio.create_task(kill())
        result = await run_job(job.spec, shards=[0], on_progress=progress)
        served_by_victim = await killer
    finally:
        for _, runner, _ in (stubs[0], stubs[2]):
            await runner.cleanup()  # type: ignore[attr-defined]
    out = read_committed(Storage(), parse_uri(str(job.spec.output.uri)))
    assert result.success
    assert out.failures == []
    assert len(out.rollouts) == 600
    assert served_by_victim > 0, "the killed replica never served: the test shows nothing"
    survivors = stubs[0][0].requests + stubs[2][0].requests
    assert survivors >= 600 - served_by_victim


async def test_the_job_stops_when_every_replica_is_down(tmp_path: Path) -> None:
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(3)]
    retry = {"maxAttempts": 2, "endpointWaitSeconds": 0}
    job = _job(tmp_path, urls, tasks=20, concurrency=4, retry=retry)
    with pytest.raises(EndpointDown):
        await asyncio.wait_for(run_job(job.spec, shards=[0]), 120)


def test_base_url_and_base_urls_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"policy\.baseURLs"):
        make_job(
            tasks_uri="tasks.jsonl",
            output_uri="out",
            base_url="http://a/v1",
            policy={"baseURL": "http://a/v1", "baseURLs": ["http://b/v1"], "model": "stub"},
        )
    with pytest.raises(SpecError, match=r"baseURLs"):
        make_job(
            tasks_uri="tasks.jsonl",
            output_uri="out",
            base_url="http://a/v1",
            policy={"baseURLs": ["ftp://b/v1"], "model": "stub"},
        )


async def test_a_replica_answering_500_is_skipped_while_the_others_go_on(tmp_path: Path) -> None:
    stubs = await _stubs([0.02, 0.02])
    broken = StubModel(StubConfig(latency=0.02, rate_500=1.0))
    runner, broken_url = await start(broken)
    try:
        job = _job(tmp_path, [stubs[0][2], broken_url, stubs[1][2]], tasks=200, concurrency=12)
        result = await run_job(job.spec, shards=[0])
    finally:
        for _, healthy, _ in stubs:
            await healthy.cleanup()  # type: ignore[attr-defined]
        await runner.cleanup()
    out = read_committed(Storage(), parse_uri(str(job.spec.output.uri)))
    assert result.success and out.failures == [] and len(out.rollouts) == 400
    # A third of the requests would go to it in turn; skipped, it gets a few probes.
    assert 3 <= broken.requests < 40, broken.requests

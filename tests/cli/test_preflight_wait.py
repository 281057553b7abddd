"""The preflight waits (up to `preflight_wait`) for an endpoint that does not answer yet, as a
pod starting beside a loading model server needs, and never for one that refuses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from clikit import math_task, write_tasks

from gym_operator.api import RolloutJob, parse_resource
from gym_operator.rollout.preflight import PreflightFailed
from gym_operator.rollout.runner import run_job
from gym_operator.testing.loopback import free_port
from gym_operator.testing.stub_model import StubModel, start


def _job(tmp_path: Path, base_url: str) -> RolloutJob:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(2)])
    body = {
        "kind": "RolloutJob",
        "spec": {
            "input": {"uri": str(tasks)},
            "policy": {"baseURL": base_url, "model": "stub"},
            "verifier": {"builtin": "math"},
            "output": {"uri": str(tmp_path / "out")},
            "retry": {"maxAttempts": 1, "backoffBaseSeconds": 0.2, "backoffMaxSeconds": 0.5},
        },
    }
    job = parse_resource(body)
    assert isinstance(job, RolloutJob)
    return job


async def test_an_endpoint_that_comes_up_is_waited_for(tmp_path: Path) -> None:
    port = free_port()
    job = _job(tmp_path, f"http://127.0.0.1:{port}/v1")
    run = asyncio.create_task(run_job(job.spec, shards=[0], preflight=True, preflight_wait=120))
    await asyncio.sleep(1.5)
    assert not run.done()
    assert not (tmp_path / "out" / "_job.json").exists()
    runner, _ = await start(StubModel(), port=port)
    try:
        result = await asyncio.wait_for(run, 120)
    finally:
        await runner.cleanup()
    assert result.success


async def test_a_refusal_is_not_waited_for(tmp_path: Path) -> None:
    runner, base_url = await start(StubModel())
    job = _job(tmp_path, base_url.replace("/v1", "/v9"))
    try:
        with pytest.raises(PreflightFailed) as failed:
            await asyncio.wait_for(
                run_job(job.spec, shards=[0], preflight=True, preflight_wait=600), 60
            )
    finally:
        await runner.cleanup()
    assert not failed.value.unavailable
    assert not (tmp_path / "out").exists()

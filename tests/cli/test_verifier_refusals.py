"""A verifier that refuses every answer (4xx, 422 included) trips the endpoint breaker: the shard
stops instead of writing a job full of `verifier_unscorable` failure rows and `_SUCCESS`."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from clikit import math_task, write_tasks

from gym_operator.api import RolloutJob, parse_resource
from gym_operator.rollout.breaker import EndpointDown
from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import start_app
from gym_operator.testing.stub_model import StubModel, start


def refusing_verifier(status: int) -> web.Application:
    async def verify(_: web.Request) -> web.Response:
        return web.json_response({"error": "cannot score this"}, status=status)

    app = web.Application()
    app.add_routes([web.post("/verify", verify)])
    return app


@pytest.mark.parametrize("status", [422, 400])
async def test_a_verifier_refusing_everything_stops_the_shard(tmp_path: Path, status: int) -> None:
    runner, verifier_url = await start_app(refusing_verifier(status))
    stub_runner, base_url = await start(StubModel())
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(12)])
    body = {
        "kind": "RolloutJob",
        "spec": {
            "input": {"uri": str(tasks)},
            "policy": {"baseURL": base_url, "model": "stub"},
            "sampling": {"numRepeats": 2, "concurrency": 4},
            "verifier": {"url": verifier_url, "maxAttempts": 1},
            "output": {"uri": str(tmp_path / "out")},
            "retry": {"endpointFailureLimit": 5, "endpointWaitSeconds": 0},
        },
    }
    job = parse_resource(body)
    assert isinstance(job, RolloutJob)
    try:
        with pytest.raises(EndpointDown, match="check spec.verifier.config"):
            await run_job(job.spec, shards=[0])
    finally:
        await stub_runner.cleanup()
        await runner.cleanup()
    out = read_committed(Storage(), parse_uri(str(tmp_path / "out")))
    assert out.failures == [] and out.rollouts == []
    assert not (tmp_path / "out" / "_SUCCESS").exists()

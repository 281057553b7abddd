"""The shards sample while the preflight's trial rollout is in flight, and nothing reaches the
output before it passed: a job that fails its preflight leaves the prefix untouched, however much
was sampled meanwhile; one that passes commits every rollout exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from faultkit import assert_exactly_once, job_body, read_output, serve, task_row, write_tasks

from gym_operator.api import parse_resource
from gym_operator.rollout.preflight import PreflightFailed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel, start

TASKS, REPEATS = 12, 2
HOLD_DEADLINE = 120.0
"""How long the held verification waits for the shards' requests (a busy machine's margin)."""


class HoldingVerifier:
    """POST /verify: the first task's answers (the preflight samples it) wait until the model has
    served every other request, so the preflight is still in flight while the shards work. The
    other tasks' answers get reward 1.0 at once; the first task's get it too, or with `refuse` a
    422, which fails the preflight."""

    def __init__(self, model: StubModel, refuse: bool) -> None:
        self.model = model
        self.refuse = refuse
        self.others_answered = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/verify", self._verify)
        return app

    async def _verify(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        if body["id"] != "t0":
            self.others_answered += 1
            return web.json_response({**body, "reward": 1.0})
        await self._hold()
        if self.refuse:
            return web.json_response({"error": "this verifier refuses every answer"}, status=422)
        return web.json_response({**body, "reward": 1.0})

    async def _hold(self) -> None:
        """Until the model served the shards' requests and the other answers were scored."""
        others = (TASKS - 1) * REPEATS
        async with asyncio.timeout(HOLD_DEADLINE):
            while self.model.requests < TASKS * REPEATS or self.others_answered < others:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # a few commit periods (partSeconds 0.1) pass meanwhile


async def _run(tmp_path: Path, *, refuse: bool) -> tuple[StubModel, Any]:
    model = StubModel()
    model_runner, base_url = await start(model)
    verifier = HoldingVerifier(model, refuse)
    verifier_runner, verifier_url = await serve(verifier.app(), shutdown_timeout=0)
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_row(i) for i in range(TASKS)])
    body = job_body(
        tasks,
        str(tmp_path / "out"),
        base_url,
        verifier_url,
        sampling={"numRepeats": REPEATS, "concurrency": 8},
        verifier={"url": verifier_url, "timeoutSeconds": 2 * HOLD_DEADLINE, "maxAttempts": 1},
        output={"uri": str(tmp_path / "out"), "partRows": 2, "partSeconds": 0.1},
    )
    try:
        run = run_job(parse_resource(body).spec, shards=[0], preflight=True)
        return model, await asyncio.wait_for(run, 2 * HOLD_DEADLINE)
    finally:
        await verifier_runner.cleanup()
        await model_runner.cleanup()


async def test_a_failed_preflight_writes_nothing_though_the_shards_sampled(
    tmp_path: Path,
) -> None:
    """Every task but the first was sampled and scored during the preflight, and thrown away."""
    with pytest.raises(PreflightFailed) as failed:
        await _run(tmp_path, refuse=True)
    assert "could not score" in str(failed.value)
    assert not (tmp_path / "out").exists()


async def test_rollouts_sampled_during_the_preflight_are_committed_once(tmp_path: Path) -> None:
    model, result = await _run(tmp_path, refuse=False)
    assert result.success
    out = read_output(Storage(), parse_uri(str(tmp_path / "out")))
    assert_exactly_once(out, TASKS, REPEATS)
    assert len(out.rollouts) == TASKS * REPEATS
    assert model.requests == TASKS * REPEATS + 1  # the preflight's answer is not kept

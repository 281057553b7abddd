"""Sampling never waits for verification, and the rollouts alive follow the concurrency limit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web
from rolloutkit import make_job, math_task, write_tasks

from gym_operator.rollout.generator import ShardStats
from gym_operator.rollout.runner import run_job
from gym_operator.rollout.stage import Stage
from gym_operator.testing.loopback import run_in_thread, start_app
from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

MODEL_SECONDS = 0.2


async def slow_verifier(seconds: float) -> tuple[web.AppRunner, str]:
    """A /verify that answers after `seconds`: 1.0 when the expected answer is in the output."""

    async def verify(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        await asyncio.sleep(seconds)
        text = json.dumps(body["response"]["output"])
        return web.json_response({"reward": float(body["expected_answer"] in text)})

    app = web.Application()
    app.router.add_post("/verify", verify)
    return await start_app(app)


async def test_a_verifier_three_times_slower_leaves_the_model_window_full(tmp_path: Path) -> None:
    """With 2 x concurrency workers that each sample then verify, a verifier 3x slower than the
    model kept the window half full (each worker sampled a quarter of the time)."""
    concurrency = 8
    model = StubModel(StubConfig(latency=MODEL_SECONDS))
    verifier = run_in_thread(lambda: slow_verifier(3 * MODEL_SECONDS), name="slow-verifier")
    with serve_in_thread(model) as url, verifier as verify_url:
        job = make_job(
            tasks_uri=str(write_tasks(tmp_path / "t.jsonl", [math_task(i) for i in range(60)])),
            output_uri=str(tmp_path / "out"),
            base_url=url,
            sampling={"numRepeats": 4, "concurrency": concurrency},
            verifier={"url": verify_url},
        )
        result = await run_job(job.spec, shards=[0], verifier_url=verify_url)
    assert result.success and result.shards[0].completed == 240
    assert model.last_answer is not None and model.first_request is not None
    sampling_seconds = model.last_answer - model.first_request
    mean_in_flight = model.in_flight_seconds / sampling_seconds
    assert model.max_in_flight == concurrency
    assert mean_in_flight >= 0.75 * concurrency, f"mean {mean_in_flight:.1f} in flight"


async def test_rollouts_alive_follow_the_current_limit_not_the_ceiling(
    stub: tuple[StubModel, str], tmp_path: Path
) -> None:
    """`concurrency: auto` has a ceiling of 1024 but starts at a limit of 8: the shard does not
    hold thousands of idle worker coroutines meanwhile."""
    _, url = stub
    alive: list[tuple[int, int]] = []

    def on_progress(stats: ShardStats) -> None:
        alive.append((len(asyncio.all_tasks()), stats.concurrency_limit))

    job = make_job(
        tasks_uri=str(write_tasks(tmp_path / "t.jsonl", [math_task(i) for i in range(100)])),
        output_uri=str(tmp_path / "out"),
        base_url=url,
        sampling={"numRepeats": 4, "concurrency": "auto"},
    )
    result = await run_job(job.spec, shards=[0], on_progress=on_progress)
    assert result.success and result.shards[0].completed == 400
    most = max(tasks for tasks, _ in alive)
    highest = max(limit for _, limit in alive)
    assert highest < 1024
    assert most <= 6 * highest + 50, f"{most} tasks alive at a limit of at most {highest}"


async def test_a_stage_admits_up_to_its_moving_bound_first_come_first_served() -> None:
    bound = [2]
    stage = Stage(lambda: bound[0])
    await stage.enter()
    await stage.enter()
    order: list[str] = []

    async def enter(name: str) -> None:
        await stage.enter()
        order.append(name)

    waiting = [asyncio.create_task(enter(name)) for name in ("a", "b", "c")]
    await asyncio.sleep(0)
    assert order == [] and stage.count == 2
    stage.leave()
    await asyncio.sleep(0)
    assert order == ["a"]
    bound[0] = 4  # the window grew: the next leave lets two more in
    stage.leave()
    await asyncio.gather(*waiting)
    assert order == ["a", "b", "c"] and stage.count == 3

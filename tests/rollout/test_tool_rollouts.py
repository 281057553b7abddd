"""Tasks with tools run the multi-turn tool loop inside the generator, verified in their session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from rolloutkit import make_job, write_tasks

from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import start_app

TOOLS = [
    {
        "type": "function",
        "name": "add",
        "description": "Add two integers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        },
    }
]


def model_app() -> web.Application:
    """Calls `add` first; answers with the tool's result once it has one."""

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        assert body["tools"][0]["function"]["name"] == "add"
        results = [m for m in body["messages"] if m["role"] == "tool"]
        if results:
            total = json.loads(results[-1]["content"])["sum"]
            message = {"role": "assistant", "content": f"#### {total}"}
        else:
            call = {"id": "c1", "type": "function", "function": {"name": "add"}}
            call["function"]["arguments"] = json.dumps({"a": 2, "b": 3})
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
        usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return web.json_response({"id": "x", "choices": [choice], "usage": usage})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


def verifier_app(sessions: dict[str, int]) -> web.Application:
    """A NeMo Gym-style resource server with one tool and per-session state."""

    async def seed(request: web.Request) -> web.Response:
        sid = f"s{len(sessions)}"
        sessions[sid] = 0
        return web.json_response({"session_id": sid})

    async def add(request: web.Request) -> web.Response:
        sessions[request.headers["X-Session-Id"]] += 1
        args = await request.json()
        return web.json_response({"sum": args["a"] + args["b"]})

    async def verify(request: web.Request) -> web.Response:
        body = await request.json()
        used_tool = sessions[request.headers["X-Session-Id"]] == 1
        kinds = [item["type"] for item in body["response"]["output"]]
        right = kinds == ["function_call", "function_call_output", "message"]
        return web.json_response({**body, "reward": 1.0 if used_tool and right else 0.0})

    app = web.Application()
    app.router.add_post("/seed_session", seed)
    app.router.add_post("/add", add)
    app.router.add_post("/verify", verify)
    return app


async def serve(app: web.Application) -> AsyncIterator[str]:
    runner, url = await start_app(app)
    try:
        yield url
    finally:
        await runner.cleanup()


@pytest.fixture
async def model_url() -> AsyncIterator[str]:
    async for url in serve(model_app()):
        yield url + "/v1"


async def test_tool_task_runs_the_loop_and_verifies_in_session(
    tmp_path: Path, model_url: str
) -> None:
    sessions: dict[str, int] = {}
    task = {
        "responses_create_params": {"input": "Add 2 and 3 with the tool.", "tools": TOOLS},
        "expected_answer": "5",
    }
    async for verifier_url in serve(verifier_app(sessions)):
        job = make_job(
            tasks_uri=str(write_tasks(tmp_path / "t.jsonl", [task])),
            output_uri=str(tmp_path / "out"),
            base_url=model_url,
            verifier={"url": verifier_url},
            sampling={"numRepeats": 2, "concurrency": 2},
        )
        result = await run_job(job.spec, shards=[0])
    assert result.success
    out = read_committed(Storage(), parse_uri(str(tmp_path / "out")))
    assert out.failures == []
    assert sorted(r["reward"] for r in out.rollouts) == [1.0, 1.0]
    response = out.rollouts[0]["response"]
    assert response["usage"]["output_tokens"] == 6  # two model turns summed
    assert len(sessions) == 2

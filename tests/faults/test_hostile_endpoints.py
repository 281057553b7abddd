"""Hostile or broken answers from the model endpoint (a misbehaving gateway, a buggy server):
each ends as a typed failure row of its rollout; the shard finishes, every other rollout done."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
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
from gym_operator.testing.stub_model import StubModel, prompt_text


def chat(message: Any, **extra: Any) -> bytes:
    return json.dumps(
        {"choices": [{"message": message, "finish_reason": "stop"}], **extra}
    ).encode()


# task index -> (raw answer body, HTTP status)
HOSTILE: dict[int, bytes] = {
    1: b"[" * 100_000,  # nested too deeply to decode
    2: b"[]",
    3: b'{"choices": "none"}',
    4: chat("just a string"),
    5: b"",
    6: b'{"choices": [' + b'{"x": "' + b"y" * (5 << 20) + b'"}' + b"]}",  # 5 MB, no message
    7: chat({"role": "assistant", "content": None, "tool_calls": [{"function": "x"}]}),
    8: chat({"role": "assistant", "content": 42}),
    9: chat({"role": "assistant", "content": [{"type": "text", "text": {"nested": 1}}]}),
    10: b"\xff\xfe not utf-8",
    11: chat({"role": "assistant", "content": "ok"}, usage={"prompt_tokens": "many"}),
}
TASKS, REPEATS = 14, 2


def hostile_gateway(stub: StubModel) -> web.Application:
    @web.middleware
    async def gateway(request: web.Request, handler: Any) -> web.StreamResponse:
        prompt = prompt_text(json.loads(await request.read()))
        for index, raw in HOSTILE.items():
            if prompt.startswith(f"Task {index}:"):
                return web.Response(body=raw, content_type="application/json")
        return await handler(request)

    app = stub.app()
    app.middlewares.append(gateway)
    return app


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_hostile_answers_become_failure_rows(tmp_path: Path, api: str) -> None:
    stub = StubModel()
    model_runner, model_url = await serve(hostile_gateway(stub))
    ver_runner, ver_url = await serve(TinyVerifier().app())
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_row(i) for i in range(TASKS)])
    body = job_body(tasks, str(tmp_path / "out"), model_url + "/v1", ver_url, policy={"api": api})
    try:
        result = await run_job(parse_resource(body).spec, shards=[0])
    finally:
        await ver_runner.cleanup()
        await model_runner.cleanup()
    assert result.success
    out = read_output(Storage(), parse_uri(str(tmp_path / "out")))
    assert_exactly_once(out, TASKS, REPEATS)
    failed = sorted({t for t, _ in out.failure_keys()})
    rewarded = sorted({t for t, _ in out.rollout_keys()})
    # Chat: task 9's content parts carry no text, an empty answer scored like any other.
    empty_ok = {9} if api == "chat" else set()
    assert failed == sorted(set(HOSTILE) - empty_ok)
    assert rewarded == sorted({0, 12, 13} | empty_ok)
    assert {f["failure"]["class"] for f in out.failures} == {"malformed"}
    assert all(f["failure"]["attempts"] == 3 for f in out.failures)
    for row in out.rollouts:
        assert isinstance(row["reward"], float)

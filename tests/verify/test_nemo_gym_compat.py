"""An external NeMo Gym-style resource server works with our client paths, unchanged.

The server below is written the way NeMo Gym resource servers behave: `/seed_session` sets a
session cookie, tools are `POST /<tool_name>` with the arguments as the body, and `/verify`
answers the request body plus `reward`. It is reached through the generator's VerifierClient
(rollout/verifier_client.py) and through the tool loop, exactly as `verifier.url` would be.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from verifykit import make_response

from gym_operator.rollout.retry import UNSCORABLE, RequestError
from gym_operator.rollout.tool_loop import run_tool_loop
from gym_operator.rollout.verifier_client import VerifierClient


class WeatherResourceServer:
    """A minimal resource server: one tool, per-session state, a session-aware verifier."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}

    async def seed_session(self, request: web.Request) -> web.Response:
        session_id = uuid.uuid4().hex
        self.sessions[session_id] = {"calls": []}
        response = web.json_response({})
        response.set_cookie("session", session_id)
        return response

    async def get_weather(self, request: web.Request) -> web.Response:
        state = self.sessions.get(request.cookies.get("session", ""), {"calls": []})
        arguments = await request.json()
        state["calls"].append(arguments["city"])
        return web.json_response({"city": arguments["city"], "weather": "sunny"})

    async def verify(self, request: web.Request) -> web.Response:
        body = await request.json()
        state = self.sessions.get(request.cookies.get("session", ""), {"calls": []})
        text = "".join(
            part.get("text", "")
            for item in body["response"]["output"]
            if item.get("type") == "message"
            for part in item.get("content", [])
        )
        used_tool = body.get("expected_city") in state["calls"]
        stateless = not body.get("requires_tool", False)
        reward = 1.0 if "sunny" in text and (used_tool or stateless) else 0.0
        return web.json_response({**body, "reward": reward})


@pytest.fixture
async def resource_server() -> AsyncIterator[str]:
    server = WeatherResourceServer()
    app = web.Application()
    app.router.add_post("/seed_session", server.seed_session)
    app.router.add_post("/get_weather", server.get_weather)
    app.router.add_post("/verify", server.verify)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    await runner.cleanup()


async def test_generator_verifier_client_scores_with_an_external_server(
    resource_server, http
) -> None:
    client = VerifierClient(http, resource_server)
    task = {"responses_create_params": {"input": "weather in Paris?"}, "expected_city": "Paris"}
    assert await client.verify(task, make_response("It is sunny."), 10) == (1.0, None)
    assert await client.verify(task, make_response("Rainy."), 10) == (0.0, None)


async def test_tool_loop_carries_the_session_to_tools_and_verify(resource_server, http) -> None:
    task = {
        "responses_create_params": {"input": "weather in Paris?", "tools": []},
        "expected_city": "Paris",
        "requires_tool": True,
    }
    turns = [
        [
            {
                "type": "function_call",
                "name": "get_weather",
                "arguments": json.dumps({"city": "Paris"}),
                "call_id": "call_1",
            }
        ],
        make_response("It is sunny in Paris.")["output"],
    ]

    async def model(params: dict[str, Any]) -> dict[str, Any]:
        return {"output": turns.pop(0), "status": "completed"}

    result = await run_tool_loop(
        model, http, resource_server, task, task["responses_create_params"], 4
    )
    tool_output = json.loads(result.response["output"][1]["output"])
    assert tool_output == {"city": "Paris", "weather": "sunny"}
    body = {**task, "response": result.response}
    async with http.post(
        f"{resource_server}/verify", json=body, headers=result.session_headers
    ) as resp:
        assert (await resp.json())["reward"] == 1.0
    # without the session the server cannot see the tool call: the session is what carried it.
    async with http.post(f"{resource_server}/verify", json=body) as resp:
        assert (await resp.json())["reward"] == 0.0


async def test_our_server_speaks_the_same_protocol_to_the_same_client(verifier_server, http):
    url = await verifier_server("exact_match", workers=1)
    client = VerifierClient(http, url)
    assert await client.verify({"expected_answer": "sunny"}, make_response("Sunny"), 10) == (
        1.0,
        None,
    )
    with pytest.raises(RequestError) as failure:
        await client.verify({"question": "no answer"}, make_response("x"), 10)
    assert failure.value.error_class == UNSCORABLE


async def test_a_server_without_sessions_still_serves_tools(http) -> None:
    async def add(request: web.Request) -> web.Response:
        arguments = await request.json()
        return web.json_response({"sum": arguments["a"] + arguments["b"]})

    app = web.Application()
    app.router.add_post("/add", add)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    turns = [
        [{"type": "function_call", "name": "add", "arguments": '{"a": 2, "b": 3}', "call_id": "c"}],
        make_response("5")["output"],
    ]

    async def model(params: dict[str, Any]) -> dict[str, Any]:
        return {"output": turns.pop(0)}

    try:
        result = await run_tool_loop(model, http, url, {}, {"input": "2+3?"}, 3)
    finally:
        await runner.cleanup()
    assert result.session_headers == {}
    assert json.loads(result.response["output"][1]["output"]) == {"sum": 5}

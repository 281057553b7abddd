"""Helpers of the hostile-input tests: servers on loopback that misbehave on purpose."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gym_operator.testing.loopback import start_app
from gym_operator.testing.stub_model import prompt_text

Answer = Callable[[web.Request, dict[str, Any], str], Awaitable[web.StreamResponse]]


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve an app on 127.0.0.1:0 (requests in flight get 1 s at cleanup)."""
    return await start_app(app, shutdown_timeout=1)


def chat_answer(content: str | None, **extra: Any) -> dict[str, Any]:
    """A Chat Completions answer with one choice; `extra` replaces top-level fields."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "hostile",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    }
    body.update(extra)
    return body


def tool_calls_answer(count: int) -> dict[str, Any]:
    """A Chat Completions answer that asks for `count` calculator calls at once."""
    calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": "1+1"})},
        }
        for i in range(count)
    ]
    body = chat_answer(None)
    body["choices"][0]["message"]["tool_calls"] = calls
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


class ScriptedModel:
    """Chat and Responses endpoints whose answer is chosen per request by
    `answer(request, body, prompt)`; it records every Authorization header it saw."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.authorizations: list[str] = []
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._chat)
        return app

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.authorizations.append(request.headers.get("Authorization", ""))
        body = json.loads(await request.read())
        return await self.answer(request, body, prompt_text(body))


class CountingTools:
    """A tool endpoint (`POST /calculator`, `/seed_session`) that counts the calls it ran."""

    def __init__(self) -> None:
        self.calls = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/seed_session", self._seed)
        app.router.add_post("/calculator", self._calculator)
        return app

    async def _seed(self, request: web.Request) -> web.Response:
        return web.json_response({"session_id": "s"})

    async def _calculator(self, request: web.Request) -> web.Response:
        self.calls += 1
        return web.json_response({"result": "2"})

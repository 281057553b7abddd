"""A scripted OpenAI-compatible model for the NeMo Gym tests (chat and responses, tool calls).

The task's prompt tells it what to answer: `[say: TEXT]` is the reply; with tools offered and
`[call: NAME {json}]` in the prompt, the first turn calls that tool and the next (once a tool
output is in the conversation) replies TEXT. A prompt holding `[garbage]` gets a 200 answer that
is not JSON; `[garbage xN]` only for the first N requests of each (prompt, seed). A request for
the model named DOWN gets 503 (a judge that is down). Responses answers leave out fields a
minimal server leaves out, but for the model named COMPLETE (NeMo Gym's own model server, which
validates them). `[wait: S]` delays the answer S seconds. Usage counts are words, never zero.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web

DOWN = "down-judge"
COMPLETE = "double-complete"
GARBAGE = re.compile(r"\[garbage(?: x(\d+))?\]")
WAIT = re.compile(r"\[wait: ([\d.]+)\]")
SAY = re.compile(r"\[say: (.*?)\]", re.S)
CALL = re.compile(r"\[call: (\w+) (\{.*?\})\]", re.S)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def _conversation(body: dict[str, Any]) -> tuple[str, bool]:
    """(the user prompt's text, whether a tool output is already in the conversation)."""
    items = body.get("messages") or body.get("input") or []
    if isinstance(items, str):
        return items, False
    prompt = " ".join(_text(i.get("content")) for i in items if i.get("role") == "user")
    tool_done = any(
        i.get("role") == "tool" or i.get("type") == "function_call_output" for i in items
    )
    return prompt, tool_done


def _decide(body: dict[str, Any]) -> tuple[str | None, tuple[str, str] | None]:
    prompt, tool_done = _conversation(body)
    call = CALL.search(prompt)
    if body.get("tools") and call and not tool_done:
        return None, (call.group(1), call.group(2))
    say = SAY.search(prompt)
    return (say.group(1) if say else "I do not know."), None


def _chat(body: dict[str, Any], text: str | None, call: tuple[str, str] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if call:
        fn = {"name": call[0], "arguments": call[1]}
        message["tool_calls"] = [
            {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function", "function": fn}
        ]
    words = len((text or "").split()) + 1
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "double"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": words, "total_tokens": 7 + words},
    }


def _responses(
    body: dict[str, Any], text: str | None, call: tuple[str, str] | None
) -> dict[str, Any]:
    """A minimal Responses answer, as some servers send it (required fields left out)."""
    output: list[dict[str, Any]] = []
    if text:
        part = {"type": "output_text", "text": text, "annotations": []}
        output.append(
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    if call:
        output.append(
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": f"call_{uuid.uuid4().hex[:8]}",
                "name": call[0],
                "arguments": call[1],
                "status": "completed",
            }
        )
    words = len((text or "").split()) + 1
    if body.get("model") == COMPLETE:
        extra = {
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
        }
        usage_details = {
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
    else:
        extra, usage_details = {}, {}
    return {
        **extra,
        "id": f"resp_{uuid.uuid4().hex[:12]}",
        "object": "response",
        "created_at": int(time.time()),
        "model": body.get("model", "double"),
        "status": "completed",
        "output": output,
        "usage": {
            "input_tokens": 7,
            "output_tokens": words,
            "total_tokens": 7 + words,
            **usage_details,
        },
    }


def app() -> web.Application:
    """The model's aiohttp application (serves /v1/chat/completions and /v1/responses)."""
    seen: Counter[tuple[str, Any]] = Counter()

    def garbage(body: dict[str, Any], prompt: str) -> bool:
        match = GARBAGE.search(prompt)
        if not match:
            return False
        seen[(prompt, body.get("seed"))] += 1
        return match.group(1) is None or seen[(prompt, body.get("seed"))] <= int(match.group(1))

    def handler(make):  # type: ignore[no-untyped-def]
        async def handle(request: web.Request) -> web.Response:
            body = await request.json()
            if body.get("model") == DOWN:
                return web.json_response({"error": "judge unavailable"}, status=503)
            prompt, _ = _conversation(body)
            wait = WAIT.search(prompt)
            if wait:
                await asyncio.sleep(float(wait.group(1)))
            if garbage(body, prompt):
                return web.Response(body=b"<html>not json", content_type="application/json")
            text, call = _decide(body)
            return web.json_response(make(body, text, call))

        return handle

    application = web.Application()
    application.router.add_post("/v1/chat/completions", handler(_chat))
    application.router.add_post("/v1/responses", handler(_responses))
    return application


async def start() -> tuple[web.AppRunner, str]:
    """Serve on a free loopback port in the running loop; (runner, base URL ending in /v1)."""
    runner = web.AppRunner(app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/v1"

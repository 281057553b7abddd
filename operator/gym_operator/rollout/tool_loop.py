"""Multi-turn tool use (NeMo Gym's simple agent loop): model -> tool calls -> model, bounded.

For a task that carries `tools`: seed a session on the verifier server, then call the model;
every `function_call` item it emits is POSTed (arguments as the JSON body, the session's cookie
and `X-Session-Id` header attached) to `<verifier>/<tool name>` and answered with a
`function_call_output` item; the model is called again with everything so far, until a turn
has no tool call, the response is truncated, or `maxTurns` model calls were made. A turn with
more calls than `maxToolCallsPerTurn`, or calls beyond `maxToolCalls` in the rollout, runs only
the calls within the limits and ends the rollout with status `incomplete` and reason
`max_tool_calls` (the calls beyond are in the trajectory, unanswered). The result is
one Responses-API `response` whose `output` is the whole trajectory (model items and tool
outputs in order) and whose `usage` sums all turns. Tool errors the model can act on (unknown
tool, bad arguments, a 4xx answer) become tool outputs; a verifier server that cannot be
reached or answers 5xx raises ToolLoopError (the generator's failure row).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gym_operator.protocol import response as protocol

ModelCall = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
SESSION_HEADER = "X-Session-Id"
TOOL_OUTPUT_CHARS = 64 * 1024
OVER_LIMIT_REASON = "max_tool_calls"


@dataclass(frozen=True)
class ToolLimits:
    """Tool calls run per model turn and per rollout."""

    per_turn: int = 32
    per_rollout: int = 128


class ToolLoopError(Exception):
    """The verifier server's session or tool endpoints failed (not the model's fault)."""


@dataclass
class ToolLoopResult:
    """The trajectory as one response, the session headers for /verify, the model turns used."""

    response: dict[str, Any]
    session_headers: dict[str, str] = field(default_factory=dict)
    turns: int = 0


def _input_items(params: dict[str, Any]) -> list[dict[str, Any]]:
    source = params.get("input")
    if isinstance(source, str):
        return [{"role": "user", "content": source}]
    return list(source or [])


async def seed_session(
    http: aiohttp.ClientSession, verifier_url: str, task: dict[str, Any], timeout: float
) -> dict[str, str]:
    """POST /seed_session with the task row; the headers that carry the session afterwards."""
    try:
        async with http.post(
            f"{verifier_url}/seed_session",
            json=task,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            if resp.status in (404, 405):  # a server without sessions: tools are stateless
                return {}
            if resp.status >= 400:
                raise ToolLoopError(f"/seed_session answered HTTP {resp.status}")
            cookies = "; ".join(f"{k}={m.value}" for k, m in resp.cookies.items())
            try:
                answer = await resp.json(content_type=None)
            except ValueError:
                answer = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ToolLoopError(f"/seed_session failed: {type(exc).__name__}: {exc}") from None
    headers = {"Cookie": cookies} if cookies else {}
    if isinstance(answer, dict) and isinstance(answer.get("session_id"), str):
        headers[SESSION_HEADER] = answer["session_id"]
    return headers


async def call_tool(
    http: aiohttp.ClientSession,
    verifier_url: str,
    call: dict[str, Any],
    headers: dict[str, str],
    timeout: float,
) -> str:
    """The `output` string for one function call (errors the model can read, or ToolLoopError)."""
    name = str(call.get("name") or "")
    raw = call.get("arguments") or "{}"
    if not isinstance(raw, str):
        return json.dumps({"error": "arguments must be a string of JSON"})
    try:
        arguments = json.loads(raw)
    except ValueError as exc:
        return json.dumps({"error": f"arguments are not JSON: {exc}"})
    except RecursionError:
        return json.dumps({"error": "arguments are not JSON: nested too deeply"})
    if not isinstance(arguments, dict):
        return json.dumps({"error": "arguments must be a JSON object"})
    if not name or "/" in name:
        return json.dumps({"error": f"invalid tool name {name!r}"})
    try:
        async with http.post(
            f"{verifier_url}/{name}",
            json=arguments,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            text = await read_prefix(resp, 4 * TOOL_OUTPUT_CHARS)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ToolLoopError(f"tool {name} failed: {type(exc).__name__}: {exc}") from None
    if resp.status >= 500:
        raise ToolLoopError(f"tool {name} answered HTTP {resp.status}")
    if resp.status == 404:
        return json.dumps({"error": f"unknown tool {name!r}"})
    if resp.status >= 400:
        return json.dumps({"error": f"HTTP {resp.status}: {text[:500]}"})
    return text[:TOOL_OUTPUT_CHARS]


async def read_prefix(resp: aiohttp.ClientResponse, max_bytes: int) -> str:
    """At most the first `max_bytes` of the body as text (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= max_bytes:
            break
    return b"".join(chunks)[:max_bytes].decode("utf-8", errors="replace")


async def run_tool_loop(
    call_model: ModelCall,
    http: aiohttp.ClientSession,
    verifier_url: str,
    task: dict[str, Any],
    params: dict[str, Any],
    max_turns: int,
    tool_timeout: float = 60.0,
    limits: ToolLimits | None = None,
) -> ToolLoopResult:
    """Run the loop for one rollout; `params` are the merged responses_create_params.

    `call_model(params)` sends one request (with its own retries) and returns the normalised
    Responses-API `response`; it is called with `params` whose `input` holds the conversation so
    far (reasoning items are kept in the trajectory but not sent back).
    """
    verifier_url = verifier_url.rstrip("/")
    headers = await seed_session(http, verifier_url, task, tool_timeout)
    conversation = _input_items(params)
    trajectory: list[dict[str, Any]] = []
    usages: list[dict[str, Any] | None] = []
    response: dict[str, Any] = {}
    turns = 0
    limits = limits or ToolLimits()
    calls_left = limits.per_rollout
    over_limit = False
    while turns < max_turns and not over_limit:
        response = await call_model({**params, "input": conversation})
        turns += 1
        usages.append(response.get("usage"))
        output = [item for item in response.get("output") or [] if isinstance(item, dict)]
        trajectory.extend(output)
        conversation.extend(item for item in output if item.get("type") != "reasoning")
        calls = [item for item in output if item.get("type") == "function_call"]
        if not calls or protocol.is_truncated(response):
            break
        allowed = min(limits.per_turn, calls_left)
        over_limit = len(calls) > allowed
        calls_left -= min(len(calls), allowed)
        for call in calls[:allowed]:
            result = await call_tool(http, verifier_url, call, headers, tool_timeout)
            item = protocol.function_call_output_item(str(call.get("call_id")), result)
            trajectory.append(item)
            conversation.append(item)
    try:
        final = protocol.with_trajectory(response, trajectory, usages, params)
    except protocol.ProtocolError as exc:
        raise ToolLoopError(f"trajectory is not a valid response: {exc}") from None
    if over_limit:
        final["status"] = "incomplete"
        final["incomplete_details"] = {"reason": OVER_LIMIT_REASON}
    return ToolLoopResult(response=final, session_headers=headers, turns=turns)

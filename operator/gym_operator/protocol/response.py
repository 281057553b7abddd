"""The Responses-API `response` object, built and checked with the openai SDK's types.

NeMo Gym validates every `response` it receives as an openai `Response` (its `NeMoGymResponse`
subclass), so everything built here is a `Response.model_validate(...).to_dict(mode="json")`:
required fields (`parallel_tool_calls`, `tool_choice`, `tools`, `usage.*_tokens_details`, ...)
are filled from the request when the endpoint did not send them. Both Chat Completions and
Responses answers end in this one shape. A Chat Completions answer is assembled in that dumped
form directly and validated once per shape (`_ChatShapes`). `response_text`, `is_truncated`,
`to_chat_messages` and `content_text` are the only readers of it in the project (data/ and
viewer/ included).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Hashable
from typing import Any

import pydantic
from openai.types.responses import Response

TRUNCATION_REASONS = frozenset({"max_output_tokens", "length", "max_tokens"})
"""`incomplete_details.reason` values that mean the model stopped at its token limit."""


class ProtocolError(ValueError):
    """A payload that does not fit the wire format (an endpoint's malformed answer)."""


class _Ids:
    """Item ids unique in this process (a counter) and across processes (a random salt, drawn
    again in a forked child), 24 hex digits as OpenAI's; no uuid4 per item."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.salt = os.urandom(6).hex()
        self.counter = itertools.count()

    def new(self, prefix: str) -> str:
        return f"{prefix}_{self.salt}{next(self.counter):012x}"


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.reseed)


def new_id(prefix: str) -> str:
    """A fresh item id in OpenAI's style (`msg_...`, `fc_...`)."""
    return _IDS.new(prefix)


def usage(
    input_tokens: int, output_tokens: int, total_tokens: int | None = None, **details: int
) -> dict[str, Any]:
    """A Responses `usage` with its token details (cached and reasoning tokens 0 unless given)."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cache_write_tokens": details.get("cache_write_tokens", 0),
            "cached_tokens": details.get("cached_tokens", 0),
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": details.get("reasoning_tokens", 0)},
        "total_tokens": input_tokens + output_tokens if total_tokens is None else total_tokens,
    }


def sum_usage(usages: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The token counts of several turns added up."""
    total = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    for one in usages:
        for key in total:
            total[key] += int((one or {}).get(key) or 0)
    return usage(**total)


def message_item(text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant `message` output item holding one `output_text` part (keys in the order
    the SDK dumps them, as every item here)."""
    part = {"annotations": [], "text": text, "type": "output_text"}
    return {
        "id": new_id("msg"),
        "content": [part],
        "role": "assistant",
        "status": status,
        "type": "message",
    }


def function_call_item(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A `function_call` output item (arguments as the JSON string the model produced)."""
    return {
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
        "type": "function_call",
        "id": new_id("fc"),
        "status": "completed",
    }


def function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
    """A tool's answer to a function call, as NeMo Gym's trajectories hold it."""
    return {
        "type": "function_call_output",
        "id": new_id("fco"),
        "call_id": call_id,
        "output": output,
        "status": "completed",
    }


def reasoning_item(text: str) -> dict[str, Any]:
    """A `reasoning` output item whose summary is the model's reasoning text."""
    return {
        "id": new_id("rs"),
        "summary": [{"text": text, "type": "summary_text"}],
        "type": "reasoning",
    }


def request_tools(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's tools in Responses shape (chat-style `{function: {...}}` flattened)."""
    out = []
    for tool in params.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            tool = {"type": "function", **tool["function"]}
        out.append(tool)
    return out


FUNCTION_FIELDS = ("name", "description", "parameters", "strict")


def chat_tools(tools: list[Any], fields: tuple[str, ...] = FUNCTION_FIELDS) -> list[dict[str, Any]]:
    """Responses-shape function tools as Chat Completions wants them (`{function: {...}}`), each
    function keeping `fields`; tools already in that shape, and any other item, as given."""
    out = []
    for tool in tools:
        if isinstance(tool, dict) and tool.get("type") == "function" and "function" not in tool:
            fn = {k: tool[k] for k in fields if k in tool}
            out.append({"type": "function", "function": fn})
        else:
            out.append(tool)
    return out


def _tool_choice(params: dict[str, Any]) -> Any:
    choice = params.get("tool_choice", "auto")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def build(payload: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """`payload` completed from the request `params` and validated as a Responses `Response`."""
    full: dict[str, Any] = {
        "id": new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "model": str(params.get("model") or ""),
        "parallel_tool_calls": params.get("parallel_tool_calls", True),
        "tool_choice": _tool_choice(params),
        "tools": request_tools(params),
        "status": "completed",
    }
    full.update({k: v for k, v in payload.items() if v is not None or k == "incomplete_details"})
    raw_usage = full.get("usage") or {}
    full["usage"] = usage(
        int(raw_usage.get("input_tokens") or 0),
        int(raw_usage.get("output_tokens") or 0),
        raw_usage.get("total_tokens"),
    )
    return _validated(full)


def _validated(full: dict[str, Any]) -> dict[str, Any]:
    """`full` validated as a Responses `Response`, in its JSON dump (ProtocolError if invalid)."""
    try:
        return Response.model_validate(full).to_dict(mode="json")
    except pydantic.ValidationError as exc:
        raise ProtocolError(f"not a valid Responses-API response: {_first_error(exc)}") from None


_REQUEST_FIELDS = ("parallel_tool_calls", "tool_choice", "tools")
"""The fields of a `response` that come from the request rather than the answer."""
_UNSEEN = object()


class _ChatShapes:
    """Assembled Chat Completions responses, validated once per shape.

    A shape is what validation depends on besides free text (ids, model, texts, tool names and
    arguments, all str) and token counts (ints): the output items' kinds and statuses, the
    response's status, and the request's tools, tool choice and parallel_tool_calls. The first
    response of a shape is validated; when its dump equals the assembled dict (same keys in the
    same order, same values), later ones of that shape are not validated again, and take the
    request fields from that dump (the SDK orders a tool's keys its own way). A shape whose dump
    differed is validated every time; so is a response with a value of an unexpected type.
    """

    LIMIT = 1024
    """Shapes remembered; past it the memory starts again (tasks may each carry their tools)."""

    def __init__(self) -> None:
        self._fields: dict[Hashable, str | None] = {}

    def finish(self, full: dict[str, Any], shape: Hashable | None) -> dict[str, Any]:
        """`full` as its validated dump; ProtocolError if it is not a valid `Response`."""
        if shape is None:
            return _validated(full)
        fields = self._fields.get(shape, _UNSEEN)
        if fields is None:
            return _validated(full)
        if isinstance(fields, str):
            return _with_request_fields(full, fields)
        validated = _validated(full)
        fields = json.dumps([validated[k] for k in _REQUEST_FIELDS])
        same = json.dumps(_with_request_fields(full, fields)) == json.dumps(validated)
        if len(self._fields) >= self.LIMIT:
            self._fields.clear()
        self._fields[shape] = fields if same else None
        return validated


def _with_request_fields(full: dict[str, Any], fields: str) -> dict[str, Any]:
    """`full` with the request fields of a validated dump (JSON), each a fresh object."""
    for key, value in zip(_REQUEST_FIELDS, json.loads(fields), strict=True):
        full[key] = value
    return full


_CHAT_SHAPES = _ChatShapes()


def _chat_shape(full: dict[str, Any], params: dict[str, Any]) -> Hashable | None:
    """The shape of an assembled chat response (see _ChatShapes); None when a value that
    validation checks is not of the type the shape assumes."""
    if type(full["id"]) is not str or type(full["model"]) is not str:
        return None
    if type(full["created_at"]) is not float:
        return None
    items: list[tuple[Any, Any]] = []
    for item in full["output"]:
        if item["type"] == "function_call" and type(item["name"]) is not str:
            return None
        items.append((item["type"], item.get("status")))
    try:
        request = json.dumps([params.get(k) for k in _REQUEST_FIELDS])
    except (TypeError, ValueError):
        return None
    return full["status"], tuple(items), request


def _first_error(exc: pydantic.ValidationError) -> str:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": str(exc)}
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"[:300]


def _chat_content(content: Any) -> str:
    if content is not None and not isinstance(content, str | list):
        raise ProtocolError(f"message content is {type(content).__name__}, not text")
    return content_text(content)


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return str(part["text"])
    return ""


def content_text(content: Any) -> str:
    """A message's `content` as the text a chat model is sent: a string as it is; a list of
    parts as the concatenated text of its string parts and of parts carrying a string `text`
    (`input_text`, `output_text`, ...); parts without text (images, files, refusals) add
    nothing; None is empty. Anything else (which a task row may not hold, so it never reaches
    a model) is its JSON, shown rather than lost."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_part_text(p) for p in content)
    return json.dumps(content, ensure_ascii=False)


def from_chat_completion(answer: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions answer as a `response` (reasoning, text, tool calls, usage)."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProtocolError("chat completion without choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ProtocolError("chat completion choice without message")
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(reasoning))
    text = _chat_content(message.get("content"))
    truncated = choice.get("finish_reason") == "length"
    if text:
        output.append(message_item(text, "incomplete" if truncated else "completed"))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            raise ProtocolError("tool call without a function")
        arguments = fn.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        output.append(
            function_call_item(str(call.get("id") or new_id("call")), fn.get("name"), arguments)
        )
    raw = usage_object(answer.get("usage"))
    prompt, completion = token_count(raw, "prompt_tokens"), token_count(raw, "completion_tokens")
    answer_id, model = answer.get("id"), answer.get("model")
    full = {
        "id": new_id("resp") if answer_id is None else answer_id,
        "created_at": _created_at(answer.get("created")),
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "model": str(params.get("model") or "") if model is None else model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": params.get("parallel_tool_calls", True),
        "tool_choice": _tool_choice(params),
        "tools": request_tools(params),
        "status": "incomplete" if truncated else "completed",
        "usage": usage(prompt, completion, token_count(raw, "total_tokens") or prompt + completion),
    }
    return _CHAT_SHAPES.finish(full, _chat_shape(full, params))


def _created_at(created: Any) -> Any:
    """An answer's `created` as the float `created_at` validation makes of a number (now when
    absent); anything else as it is, for validation to judge."""
    if created is None:
        return float(int(time.time()))
    if type(created) in (int, float):
        try:
            return float(created)
        except OverflowError:
            return created
    return created


def from_responses_answer(answer: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A Responses API answer, completed where the endpoint left required fields out."""
    if not isinstance(answer.get("output"), list):
        raise ProtocolError("response without an output list")
    raw = usage_object(answer.get("usage"))
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        token_count(raw, key)
    return build(answer, params)


def usage_object(raw: Any) -> dict[str, Any]:
    """An answer's `usage` as a dict ({} when absent); ProtocolError for anything else."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProtocolError(f"usage is {type(raw).__name__}, not an object")
    return raw


def token_count(raw: dict[str, Any], key: str) -> int:
    """`raw[key]` as a non-negative int (0 when absent); a ProtocolError for anything else.

    A negative, textual or absurd count would otherwise reach the token metrics, which raise
    outside any failure class.
    """
    value = raw.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**63:
        raise ProtocolError(f"usage.{key} is not a token count")
    return int(value)


def with_trajectory(
    last: dict[str, Any],
    output: list[dict[str, Any]],
    usages: list[dict[str, Any] | None],
    params: dict[str, Any],
) -> dict[str, Any]:
    """The last turn's `response` holding the whole multi-turn trajectory and summed usage."""
    payload = dict(last)
    payload["output"] = output
    payload["usage"] = sum_usage(usages)
    return build(payload, params)


def response_text(response: dict[str, Any]) -> str:
    """All assistant `output_text` of a `response`, concatenated in order."""
    texts: list[str] = []
    for item in response.get("output") or []:
        if not isinstance(item, dict) or (item.get("type") or "message") != "message":
            continue
        if item.get("role", "assistant") != "assistant":
            continue
        for part in item.get("content") or []:
            if isinstance(part, dict) and part.get("type") in ("output_text", "text"):
                texts.append(_part_text(part))
    return "".join(texts)


def is_truncated(response: dict[str, Any]) -> bool:
    """Whether the model stopped at its token limit (an outcome, not an error)."""
    if response.get("status") != "incomplete":
        return False
    reason = (response.get("incomplete_details") or {}).get("reason")
    return reason is None or reason in TRUNCATION_REASONS


def _tool_call(item: dict[str, Any]) -> dict[str, Any]:
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {
        "id": str(item.get("call_id") or item.get("id") or ""),
        "type": "function",
        "function": {"name": str(item.get("name", "")), "arguments": arguments},
    }


def to_chat_messages(items: list[Any], default_role: str = "user") -> list[dict[str, Any]]:
    """Responses-API items as the chat messages a Chat Completions model is sent.

    An item without a `type` (or a null one) is a message, as the Responses API's short form
    `{role, content}`; without a `role` it takes `default_role`. Its content is `content_text`.
    A function call joins the assistant message before it as one of its `tool_calls`; its output
    becomes a `tool` message; `developer` is `system`; reasoning items are not sent back. The
    same function turns a rollout's prompt and answer into the exported training conversation,
    so what a dataset holds is what the model saw.
    """
    messages: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            messages.append({"role": default_role, "content": item})
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or "message"
        if kind == "message":
            role = item.get("role") or default_role
            text = content_text(item.get("content"))
            messages.append({"role": "system" if role == "developer" else role, "content": text})
        elif kind == "function_call":
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant":
                last = {"role": "assistant", "content": ""}
                messages.append(last)
            last.setdefault("tool_calls", []).append(_tool_call(item))
        elif kind == "function_call_output":
            output = item.get("output", "")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id", "")),
                    "content": output if isinstance(output, str) else json.dumps(output),
                }
            )
    return messages


def prompt_messages(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompt of `responses_create_params` as chat messages (instructions as system first)."""
    source = params.get("input", "")
    messages = to_chat_messages(source if isinstance(source, list) else [source], "user")
    instructions = params.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    return messages

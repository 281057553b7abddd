"""Async model client for OpenAI-compatible endpoints, answers normalised to NeMo Gym `response`.

One `aiohttp.ClientSession` per process, its connection pool sized to the concurrency. Both the
Chat Completions API (`/chat/completions`) and the Responses API (`/responses`) come back as a
Responses-API object: `output[]` (message items with output_text parts, function_call items),
`usage` {input_tokens, output_tokens, total_tokens}, `status` and `incomplete_details` (reason
`max_output_tokens` when the model stopped at its token limit). The API key is sent as a Bearer
token; an endpoint may echo it into any text of its answer, so the writers and the log redact it
(`gym_operator.redaction`), not this client.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gym_operator.rollout.retry import (
    CONNECTION,
    HTTP_4XX,
    HTTP_5XX,
    HTTP_429,
    MALFORMED,
    TIMEOUT,
    TOO_LARGE,
    RequestError,
    parse_retry_after,
)

# Responses-API request fields that Chat Completions does not take (dropped or translated).
_RESPONSES_ONLY = frozenset(
    {
        "input",
        "instructions",
        "max_output_tokens",
        "text",
        "reasoning",
        "store",
        "previous_response_id",
        "include",
        "truncation",
        "background",
        "prompt",
    }
)
ERROR_BODY_CHARS = 300
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""Bound of an answer's body when the caller names none (the verifier's answers)."""


def load_api_key(env_name: str | None) -> str | None:
    """The API key from `$<env_name>`, else from the file named by `$<env_name>_FILE`."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value:
        return value.strip()
    path = os.environ.get(f"{env_name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def make_session(concurrency: int, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    """One session whose connection pool holds `concurrency` connections."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=0, ttl_dns_cache=300)
    # Each request has its own deadline (asyncio.timeout in post_json); no second timer here.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    return aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout, trust_env=False
    )


def merge_params(task_params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The task's responses_create_params with the job's sampling params on top (None ignored)."""
    merged = dict(task_params)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return merged


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part, str):
            parts.append(part)
    return "".join(parts)


def _chat_messages(params: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if params.get("instructions"):
        messages.append({"role": "system", "content": params["instructions"]})
    source = params.get("input")
    if isinstance(source, str):
        messages.append({"role": "user", "content": source})
        return messages
    for item in source or []:
        kind = item.get("type", "message")
        if kind == "function_call":
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": item.get("call_id"),
                            "type": "function",
                            "function": {"name": item["name"], "arguments": item["arguments"]},
                        }
                    ],
                }
            )
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id"), "content": item["output"]}
            )
        else:
            role = "system" if item.get("role") == "developer" else item.get("role", "user")
            messages.append({"role": role, "content": _content_text(item.get("content"))})
    return messages


def _chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        if tool.get("type") == "function" and "function" not in tool:
            fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
            out.append({"type": "function", "function": fn})
        else:
            out.append(tool)
    return out


def chat_request(params: dict[str, Any], model: str) -> dict[str, Any]:
    """A Chat Completions body from Responses-style params."""
    body = {k: v for k, v in params.items() if k not in _RESPONSES_ONLY}
    body["model"] = model
    body["messages"] = _chat_messages(params)
    if params.get("max_output_tokens") is not None:
        body["max_tokens"] = params["max_output_tokens"]
    if body.get("tools"):
        body["tools"] = _chat_tools(body["tools"])
    return body


def responses_request(params: dict[str, Any], model: str) -> dict[str, Any]:
    """A Responses API body (the params are already in that shape)."""
    body = dict(params)
    body["model"] = model
    return body


def normalise_chat(answer: dict[str, Any]) -> dict[str, Any]:
    """A Chat Completions answer as a Responses-API `response` object."""
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise RequestError(MALFORMED, "chat completion without choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise RequestError(MALFORMED, "chat completion choice without message")
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(
            {
                "type": "reasoning",
                "id": f"rs_{uuid.uuid4().hex[:24]}",
                "summary": [{"type": "summary_text", "text": reasoning}],
            }
        )
    content = message.get("content")
    if isinstance(content, list):
        content = _content_text(content)
    if content is not None and not isinstance(content, str):
        raise RequestError(MALFORMED, f"message content is {type(content).__name__}, not text")
    if content:
        output.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": content, "annotations": []}],
            }
        )
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:24]}",
                "call_id": call.get("id"),
                "name": fn.get("name"),
                "arguments": fn.get("arguments", ""),
                "status": "completed",
            }
        )
    usage = _usage_object(answer.get("usage"))
    truncated = choice.get("finish_reason") == "length"
    prompt_tokens = token_count(usage, "prompt_tokens")
    completion_tokens = token_count(usage, "completion_tokens")
    return {
        "id": answer.get("id") or f"resp_{uuid.uuid4().hex[:24]}",
        "object": "response",
        "created_at": answer.get("created") or int(time.time()),
        "model": answer.get("model"),
        "status": "incomplete" if truncated else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
        "output": output,
        "usage": {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": token_count(usage, "total_tokens") or prompt_tokens + completion_tokens,
        },
        "finish_reason": choice.get("finish_reason"),
    }


def normalise_responses(answer: dict[str, Any]) -> dict[str, Any]:
    """A Responses API answer, checked to have the fields rollout rows rely on."""
    if not isinstance(answer.get("output"), list):
        raise RequestError(MALFORMED, "response without an output list")
    for item in answer["output"]:
        parts = item.get("content") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(parts, list | None):
            raise RequestError(MALFORMED, "response output item of the wrong shape")
        if any(
            not isinstance(p, dict) or not isinstance(p.get("text", ""), str) for p in parts or []
        ):
            raise RequestError(MALFORMED, "response output text that is not a string")
    answer.setdefault("status", "completed")
    usage = _usage_object(answer.get("usage"))
    answer["usage"] = {
        **usage,
        **{k: token_count(usage, k) for k in ("input_tokens", "output_tokens", "total_tokens")},
    }
    return answer


def _usage_object(usage: Any) -> dict[str, Any]:
    if usage is None:
        return {}
    if not isinstance(usage, dict):
        raise RequestError(MALFORMED, f"usage is {type(usage).__name__}, not an object")
    return usage


def token_count(usage: dict[str, Any], key: str) -> int:
    """`usage[key]` as a non-negative int (0 when absent); MALFORMED for anything else."""
    value = usage.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**63:
        raise RequestError(MALFORMED, f"usage.{key} is not a token count")
    return int(value)


def is_truncated(response: dict[str, Any]) -> bool:
    """Whether the model stopped at its token limit."""
    details = response.get("incomplete_details") or {}
    return response.get("status") == "incomplete" and details.get("reason") == "max_output_tokens"


class ModelClient:
    """Sends one sampling request per call; raises RequestError with its class on failure."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        model: str,
        api: str = "chat",
        api_key: str | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.session = session
        self.max_answer_bytes = max_answer_bytes
        self.model = model
        self.api = api
        path = "/chat/completions" if api == "chat" else "/responses"
        self.url = base_url.rstrip("/") + path
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def __repr__(self) -> str:
        return f"ModelClient(url={self.url!r}, model={self.model!r}, api={self.api!r})"

    def request_body(self, params: dict[str, Any]) -> dict[str, Any]:
        """The HTTP body for Responses-style params."""
        if self.api == "chat":
            return chat_request(params, self.model)
        return responses_request(params, self.model)

    async def create(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """POST the body; the normalised `response` object."""
        answer = await post_json(
            self.session, self.url, body, timeout, self._headers, self.max_answer_bytes
        )
        try:
            if self.api == "chat":
                return normalise_chat(answer)
            return normalise_responses(answer)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # An answer of the wrong shape is this rollout's failure, never the shard's crash.
            raise RequestError(MALFORMED, f"unexpected answer shape: {exc!r}"[:300]) from None


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    timeout: float,
    headers: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> dict[str, Any]:
    """POST JSON, answer a JSON object; every failure is a classified RequestError.

    The body is read in chunks and never beyond `max_bytes` (an answer over it is a TOO_LARGE
    failure, however it is sent), so an endless or huge answer cannot take the process's memory.
    """
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, json=body, headers=headers) as resp:
                raw = await read_bounded(resp, max_bytes)
                if resp.status >= 400:
                    raise _http_error(resp.status, raw, resp.headers.get("Retry-After"))
    except TimeoutError:
        raise RequestError(TIMEOUT, f"no answer within {timeout:g}s") from None
    except aiohttp.ClientResponseError as exc:
        raise _http_error(exc.status, str(exc.message).encode(), None) from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise RequestError(CONNECTION, f"{type(exc).__name__}: {exc}") from None
    try:
        answer = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to decode
        raise RequestError(MALFORMED, f"body is not JSON: {raw[:80]!r}") from None
    if not isinstance(answer, dict):
        raise RequestError(MALFORMED, "body is not a JSON object")
    return answer


async def read_bounded(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The whole body, read in chunks; RequestError(TOO_LARGE) as soon as it passes max_bytes."""
    too_large = RequestError(TOO_LARGE, f"answer larger than {max_bytes} bytes (not read)")
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _http_error(status: int, raw: bytes, retry_after: str | None) -> RequestError:
    text = raw[:ERROR_BODY_CHARS].decode("utf-8", errors="replace")
    if status == 429:
        cls = HTTP_429
    elif status == 408:
        cls = TIMEOUT
    elif status >= 500:
        cls = HTTP_5XX
    else:
        cls = HTTP_4XX
    return RequestError(
        cls, f"HTTP {status}: {text}", status=status, retry_after=parse_retry_after(retry_after)
    )

"""Async model client for OpenAI-compatible endpoints; answers become NeMo Gym `response` objects.

One `aiohttp.ClientSession` per process, its connection pool sized to the concurrency. Both the
Chat Completions API (`/chat/completions`) and the Responses API (`/responses`) come back as a
Responses-API `Response` built by `gym_operator.protocol.response` (the openai SDK's types, which
NeMo Gym validates against). The API key is sent as a Bearer token; an endpoint may echo it into
any text of its answer, so the writers and the log redact it (`gym_operator.redaction`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import aiohttp

from gym_operator.protocol import response as protocol
from gym_operator.protocol.failures import FailureClass
from gym_operator.rollout.replicas import ReplicaPool
from gym_operator.rollout.retry import RequestError, parse_retry_after

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
REPLICA_FAULTS = frozenset({FailureClass.CONNECTION, FailureClass.TIMEOUT, FailureClass.HTTP_5XX})
"""Failures that count against the replica that answered them (not the request's fault)."""
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


def chat_request(params: dict[str, Any], model: str) -> dict[str, Any]:
    """A Chat Completions body from Responses-style params."""
    body = {k: v for k, v in params.items() if k not in _RESPONSES_ONLY}
    body["model"] = model
    body["messages"] = protocol.prompt_messages(params)
    if params.get("max_output_tokens") is not None:
        body["max_tokens"] = params["max_output_tokens"]
    if body.get("tools"):
        body["tools"] = protocol.chat_tools(body["tools"])
    return body


def responses_request(params: dict[str, Any], model: str) -> dict[str, Any]:
    """A Responses API body (the params are already in that shape)."""
    body = dict(params)
    body["model"] = model
    return body


class ModelClient:
    """Sends one sampling request per call; raises RequestError with its class on failure.

    `base_url` may be several replicas of the model: each request goes to one of them
    (`gym_operator.rollout.replicas`)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str | list[str],
        model: str,
        api: str = "chat",
        api_key: str | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.session = session
        self.max_answer_bytes = max_answer_bytes
        self.model = model
        self.api = api
        self.path = "/chat/completions" if api == "chat" else "/responses"
        self.replicas = ReplicaPool([base_url] if isinstance(base_url, str) else base_url)
        self.url = self.replicas.describe() + self.path
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else None

    def __repr__(self) -> str:
        return f"ModelClient(url={self.url!r}, model={self.model!r}, api={self.api!r})"

    def request_body(self, params: dict[str, Any]) -> dict[str, Any]:
        """The HTTP body for Responses-style params."""
        if self.api == "chat":
            return chat_request(params, self.model)
        return responses_request(params, self.model)

    async def create(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        """POST the body to a replica; the normalised `response` object."""
        return self.normalise(await self.send(body, timeout), body)

    async def send(self, body: dict[str, Any], timeout: float) -> bytes:
        """POST the body to a replica; the answer's body, not parsed (see `normalise`)."""
        replica = self.replicas.acquire()
        headers = self._headers
        if replica.host is not None:
            headers = {**(headers or {}), "Host": replica.host}
        try:
            raw = await post_bytes(
                self.session,
                replica.base_url + self.path,
                body,
                timeout,
                headers,
                self.max_answer_bytes,
            )
        except RequestError as exc:
            self.replicas.release(replica, failed=exc.error_class in REPLICA_FAULTS)
            raise
        except BaseException:
            self.replicas.release(replica, failed=False)
            raise
        self.replicas.release(replica, failed=False)
        return raw

    def normalise(self, raw: bytes, body: dict[str, Any]) -> dict[str, Any]:
        """An answer's body as the `response` object; a `malformed` RequestError if not one."""
        answer = decode_object(raw)
        try:
            if self.api == "chat":
                return protocol.from_chat_completion(answer, body)
            return protocol.from_responses_answer(answer, body)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # An answer of the wrong shape is this rollout's failure, never the shard's crash.
            raise RequestError(
                FailureClass.MALFORMED, f"unexpected answer shape: {exc!r}"[:300]
            ) from None


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    timeout: float,
    headers: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> dict[str, Any]:
    """POST JSON, answer a JSON object; every failure is a classified RequestError."""
    return decode_object(await post_bytes(session, url, body, timeout, headers, max_bytes))


async def post_bytes(
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    timeout: float,
    headers: dict[str, str] | None = None,
    max_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
) -> bytes:
    """POST JSON, answer the body of a 2xx/3xx answer; every failure is a classified RequestError.

    The body is read in chunks and never beyond `max_bytes` (an answer over it is an
    `answer_too_large` failure, however it is sent), so an endless or huge answer cannot take the
    process's memory.
    """
    try:
        async with asyncio.timeout(timeout):
            async with session.post(url, json=body, headers=headers) as resp:
                raw = await read_bounded(resp, max_bytes)
                if resp.status >= 400:
                    raise _http_error(resp.status, raw, resp.headers.get("Retry-After"))
    except TimeoutError:
        raise RequestError(FailureClass.TIMEOUT, f"no answer within {timeout:g}s") from None
    except aiohttp.ClientResponseError as exc:
        raise _http_error(exc.status, str(exc.message).encode(), None) from None
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise RequestError(FailureClass.CONNECTION, f"{type(exc).__name__}: {exc}") from None
    return raw


def decode_object(raw: bytes) -> dict[str, Any]:
    """A body as the JSON object it holds; a `malformed` RequestError for anything else."""
    try:
        answer = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to decode
        raise RequestError(FailureClass.MALFORMED, f"body is not JSON: {raw[:80]!r}") from None
    if not isinstance(answer, dict):
        raise RequestError(FailureClass.MALFORMED, "body is not a JSON object")
    if b"\\ud" in raw or b"\\uD" in raw:  # maybe a lone surrogate escape: scrub (rare, slow)
        try:
            answer = valid_unicode(answer)
        except RecursionError:
            raise RequestError(FailureClass.MALFORMED, "body is nested too deeply") from None
    return answer


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(value: Any) -> Any:
    """`value` with lone surrogates (JSON escapes that no UTF-8 file can hold, so a part could
    not be written) replaced by U+FFFD; surrogate pairs were already joined by the decoder."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [valid_unicode(v) for v in value]
    if isinstance(value, dict):
        return {valid_unicode(k): valid_unicode(v) for k, v in value.items()}
    return value


async def read_bounded(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The whole body, read in chunks; `answer_too_large` as soon as it passes max_bytes."""
    too_large = RequestError(
        FailureClass.TOO_LARGE, f"answer larger than {max_bytes} bytes (not read)"
    )
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise too_large
    if resp.content_length is not None and "Content-Encoding" not in resp.headers:
        return await resp.read()  # exactly content_length bytes (no decompression), one call
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
        cls = FailureClass.HTTP_429
    elif status == 408:
        cls = FailureClass.TIMEOUT
    elif status >= 500:
        cls = FailureClass.HTTP_5XX
    else:
        cls = FailureClass.HTTP_4XX
    return RequestError(
        cls, f"HTTP {status}: {text}", status=status, retry_after=parse_retry_after(retry_after)
    )

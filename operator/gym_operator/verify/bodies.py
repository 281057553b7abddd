"""What the verifier server accepts: a body that is a JSON object within the size and time limits,
with a `response` it can score; and its answer, the request body with the score fields spliced in.

Every refusal is an answer naming what is wrong (400 / 408 / 413), never an exception: the bodies
come from the policy being trained, which may send anything.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from gym_operator.verify.settings import VerifierSettings

RAW_BODY: web.RequestKey[bytes] = web.RequestKey("raw_body", bytes)


def error_answer(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def read_json_object(
    request: web.Request, settings: VerifierSettings
) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or the error answer (400 / 408 / 413) naming what is wrong."""
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return error_answer(413, f"body of {request.content_length} bytes exceeds {limit} bytes")
    seconds = settings.body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error_answer(413, f"body exceeds {limit} bytes")
    except TimeoutError:
        answer = error_answer(408, f"body not received within {seconds:g} s")
        answer.force_close()
        return answer
    if not raw.strip():
        return error_answer(400, "body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return error_answer(400, f"body is not JSON: {exc}")
    except RecursionError:
        return error_answer(400, "body is not JSON: nested too deeply")
    if not isinstance(body, dict):
        return error_answer(400, f"body must be a JSON object, got {type(body).__name__}")
    request[RAW_BODY] = raw
    return body


def answer_bytes(raw: bytes, body: dict[str, Any], extra: dict[str, Any]) -> bytes:
    """The request body plus `extra` fields, as JSON: the raw bytes spliced, not re-encoded.

    Falls back to encoding the whole object when the body is not plain UTF-8 JSON text or
    already has one of the fields.
    """
    text = raw.strip()
    if text[:1] != b"{" or text[-1:] != b"}" or not body or any(k in body for k in extra):
        return json.dumps({**body, **extra}, default=str).encode()
    return text[:-1] + b", " + json.dumps(extra, default=str)[1:].encode()


def bad_response_field(body: dict[str, Any]) -> str | None:
    """What makes the body's `response` unusable, naming the field; None when it is usable."""
    response = body.get("response")
    if not isinstance(response, dict):
        return "body needs a `response` object (the Responses-API response to score)"
    if "output" not in response:
        return "`response.output` is missing (the list of output items)"
    output = response["output"]
    if not isinstance(output, list):
        return "`response.output` must be a list of output items"
    for index, item in enumerate(output):
        if not isinstance(item, dict):
            return "`response.output` items must be objects"
        problem = _bad_content(item.get("content"))
        if problem:
            return f"`response.output[{index}].content{problem[0]}` {problem[1]}"
    return None


def _bad_content(content: Any) -> tuple[str, str] | None:
    """(path below `content`, what is wrong) for content that is neither text nor parts."""
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return "", f"must be a list of parts, got {type(content).__name__}"
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            return f"[{index}]", f"must be an object, got {type(part).__name__}"
        if part.get("text") is not None and not isinstance(part["text"], str):
            return f"[{index}].text", f"must be a string, got {type(part['text']).__name__}"
    return None

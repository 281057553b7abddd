"""Helpers of the verifier tests: Responses-API builders and a /verify call."""

from __future__ import annotations

from typing import Any

import aiohttp


def make_response(text: str, reasoning: str | None = None) -> dict[str, Any]:
    """A Responses-API response whose final message is `text` (optional reasoning item first)."""
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        output.append(
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": reasoning}]}
        )
    content = [{"type": "output_text", "text": text}]
    output.append({"type": "message", "role": "assistant", "content": content})
    return {"output": output, "status": "completed"}


async def post_verify(
    http: aiohttp.ClientSession, url: str, task: dict[str, Any], text: str
) -> tuple[int, dict[str, Any]]:
    """POST /verify with the task and a response holding `text`; (status, JSON answer)."""
    async with http.post(f"{url}/verify", json={**task, "response": make_response(text)}) as resp:
        return resp.status, await resp.json(content_type=None)

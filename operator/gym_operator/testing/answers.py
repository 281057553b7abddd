"""The Chat Completions and Responses answer bodies the loopback model servers send."""

from __future__ import annotations

import time
import uuid
from typing import Any


def chat_completion(
    model: str, text: str, *, length: bool, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    """A `chat.completion` with one assistant choice; `length` sets finish_reason length."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if length else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def response(
    model: str, text: str, *, length: bool, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    """A Responses-API `response` with one output message; `length` makes it incomplete."""
    status = "incomplete" if length else "completed"
    return {
        "id": f"resp_{uuid.uuid4().hex[:16]}",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"} if length else None,
        "output": [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:16]}",
                "role": "assistant",
                "status": status,
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }

"""Reading rollout rows: prompt and response as chat messages, text, truncation, ground truth.

A rollout row is a NeMo Gym task row plus `response` (a Responses-API object), `reward` and the
identity `_ng_task_index` / `_ng_rollout_index`. Everything here is a pure function of one row.
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from gym_operator.protocol import response as protocol

Message = dict[str, Any]

# Fields added to a task row by the generator; everything else is a task (verifier) field.
ROLLOUT_FIELDS = frozenset(
    {"response", "reward", "reward_components", "_ng_task_index", "_ng_rollout_index"}
)
# Task fields looked up, in order, for the ground truth of RL rows.
GROUND_TRUTH_FIELDS = ("expected_answer", "ground_truth", "answer", "solution", "label")


def task_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The task part of a rollout row (what the input JSONL line held)."""
    return {k: v for k, v in row.items() if k not in ROLLOUT_FIELDS}


def verifier_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Task fields other than the request itself: expected_answer, options, test cases, ..."""
    return {
        k: v
        for k, v in row.items()
        if k not in ROLLOUT_FIELDS and k != "responses_create_params" and not k.startswith("_")
    }


def reward_of(row: dict[str, Any]) -> float | None:
    """The reward as a finite float, or None when the rollout is unverified."""
    value = row.get("reward")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def identity_of(row: dict[str, Any]) -> tuple[int, int] | None:
    """(task index, rollout index), or None when either is missing or not an integer."""
    task, rollout = row.get("_ng_task_index"), row.get("_ng_rollout_index")
    if isinstance(task, int) and isinstance(rollout, int) and not isinstance(task, bool):
        return task, rollout
    return None


def prompt_messages(row: dict[str, Any]) -> list[Message]:
    """The prompt of a task as the chat messages the model was sent (instructions first)."""
    return protocol.prompt_messages(row.get("responses_create_params") or {})


def completion_messages(row: dict[str, Any]) -> list[Message]:
    """The model's answer as assistant (and tool) messages."""
    response = row.get("response") or {}
    return protocol.to_chat_messages(response.get("output") or [], "assistant")


def response_text(row: dict[str, Any]) -> str:
    """All assistant text of the response, concatenated (the text the verifier scored)."""
    return protocol.response_text(row.get("response") or {})


def has_tool_calls(row: dict[str, Any]) -> bool:
    """Whether the response called a tool."""
    output = (row.get("response") or {}).get("output") or []
    return any(isinstance(i, dict) and i.get("type") == "function_call" for i in output)


def is_truncated(row: dict[str, Any]) -> bool:
    """Whether the response was cut by the token limit (as the generator judged it)."""
    return protocol.is_truncated(row.get("response") or {})


TRAINING_TOOL_FIELDS = ("name", "description", "parameters")
"""The function fields a dataset keeps: what a chat template renders for the model. `strict` is
left out: it asks the server to enforce the schema while decoding, it is not part of the prompt."""


def tools_of(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The tools offered to the model, in chat-completions shape ({type: function, function})."""
    params = row.get("responses_create_params") or {}
    tools = params.get("tools")
    if not isinstance(tools, list) or not tools:
        return None
    return protocol.chat_tools(tools, TRAINING_TOOL_FIELDS)


def ground_truth_value(row: dict[str, Any]) -> Any:
    """The task's reference answer as the task holds it (a string, a list, ...), or None."""
    for name in GROUND_TRUTH_FIELDS:
        if name in row and row[name] is not None:
            return row[name]
    return None


def ground_truth(row: dict[str, Any]) -> str | None:
    """The task's reference answer as a string (JSON for structured values), or None."""
    value = ground_truth_value(row)
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def ground_truths(row: dict[str, Any]) -> list[str]:
    """The reference answer as a list of strings: each item of a list, else the one answer."""
    value = ground_truth_value(row)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items]


def prompt_key(row: dict[str, Any]) -> str:
    """The prompt as the model sees it, normalised: equal prompts give equal keys.

    The chat messages of `prompt_messages` (so a string input, a list of content parts and a
    single user message with the same text are one prompt; `instructions` and a system message
    too), each content NFC-normalised with its surrounding whitespace stripped, plus the tools
    offered. Verifier fields are not part of it.
    """
    messages = [
        {
            "role": m["role"],
            "content": unicodedata.normalize("NFC", m.get("content") or "").strip(),
            "tool_calls": m.get("tool_calls") or [],
            "tool_call_id": m.get("tool_call_id") or "",
        }
        for m in prompt_messages(row)
    ]
    return json.dumps(
        [messages, tools_of(row) or []],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )

"""One rollout row as the page shows it: the conversation turn by turn, and the verdict.

Turns come from the request (`responses_create_params`: instructions, input messages and
items) and the answer (`response.output`: messages, reasoning, tool calls and tool outputs).
"""

from __future__ import annotations

import json
from typing import Any

from gym_operator.data import rows as rowlib
from gym_operator.protocol import response as protocol

Turn = dict[str, Any]
HIDDEN = {"response", "responses_create_params", "reward", "reward_components", "failure"}
PREVIEW = 160


def _refusal(content: Any) -> str:
    """The text of refusal parts, which carry no `text` (shown so a refusal is not blank)."""
    if not isinstance(content, list):
        return ""
    return "".join(
        str(p.get("refusal") or "")
        for p in content
        if isinstance(p, dict) and p.get("type") == "refusal"
    )


def item_turn(item: Any, default_role: str) -> Turn | None:
    """One input or output item (message, tool call, tool output, reasoning) as a turn."""
    if not isinstance(item, dict):
        return {"role": default_role, "kind": "message", "text": str(item)}
    kind = item.get("type") or "message"
    if kind == "function_call":
        return {
            "role": "assistant",
            "kind": "tool_call",
            "name": item.get("name"),
            "callId": item.get("call_id"),
            "text": str(item.get("arguments") or ""),
        }
    if kind == "function_call_output":
        return {
            "role": "tool",
            "kind": "tool_output",
            "callId": item.get("call_id"),
            "text": protocol.content_text(item.get("output")),
        }
    if kind == "reasoning":
        text = protocol.content_text(item.get("summary")) or protocol.content_text(
            item.get("content")
        )
        return {"role": "assistant", "kind": "reasoning", "text": text}
    if kind == "message":
        content = item.get("content")
        return {
            "role": str(item.get("role") or default_role),
            "kind": "message",
            "text": protocol.content_text(content) or _refusal(content),
        }
    return {"role": default_role, "kind": str(kind), "text": json.dumps(item, ensure_ascii=False)}


def turns(row: dict[str, Any]) -> list[Turn]:
    """Every turn of the rollout, request first, in order."""
    params = row.get("responses_create_params") or {}
    out: list[Turn] = []
    if params.get("instructions"):
        text = protocol.content_text(params["instructions"])
        out.append({"role": "system", "kind": "message", "text": text})
    given = params.get("input")
    items = [{"role": "user", "content": given}] if isinstance(given, str) else given or []
    out.extend(t for t in (item_turn(i, "user") for i in items) if t)
    response = row.get("response") if isinstance(row.get("response"), dict) else {}
    out.extend(t for t in (item_turn(i, "assistant") for i in response.get("output") or []) if t)
    return out


def tools_offered(row: dict[str, Any]) -> list[str]:
    """Names of the tools the request offered."""
    tools = (row.get("responses_create_params") or {}).get("tools") or []
    names = [
        t.get("name") or (t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)
    ]
    return [str(n) for n in names if n]


def prompt_preview(row: dict[str, Any]) -> str:
    """The last user message, shortened."""
    users = [t["text"] for t in turns(row) if t["role"] == "user" and t["kind"] == "message"]
    return _short(users[-1] if users else "")


def answer_preview(row: dict[str, Any]) -> str:
    """The final answer text (or the failure message), shortened."""
    if isinstance(row.get("failure"), dict):
        return _short(str(row["failure"].get("message") or ""))
    if "reason" in row and "response" not in row:
        return _short(f"line {row.get('line', '?')}: {row.get('reason')}: {row.get('excerpt', '')}")
    return _short(rowlib.response_text(row))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def detail(row: dict[str, Any]) -> dict[str, Any]:
    """Everything the task page shows of one repeat."""
    response = row.get("response") if isinstance(row.get("response"), dict) else {}
    return {
        "turns": turns(row),
        "tools": tools_offered(row),
        "reward": rowlib.reward_of(row),
        "components": row.get("reward_components"),
        "failure": row.get("failure"),
        "truncated": rowlib.is_truncated(row),
        "status": response.get("status"),
        "usage": response.get("usage"),
        "fields": {k: v for k, v in row.items() if k not in HIDDEN},
    }

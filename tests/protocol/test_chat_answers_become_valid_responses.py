"""Chat Completions answers become the openai `Response` that validating them gives, every time."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from openai.types.responses import Response

from gym_operator.protocol.response import ProtocolError, from_chat_completion

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "calc",
            "description": "adds numbers",
            "parameters": {"type": "object", "properties": {"x": {"type": "number"}}},
        },
    }
]
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1796028818,
    "model": "stub",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The sum is 3.\n#### 3"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}


def _answer(**message: Any) -> dict[str, Any]:
    answer = copy.deepcopy(ANSWER)
    answer["choices"][0]["message"].update(message)
    return answer


def _truncated() -> dict[str, Any]:
    answer = copy.deepcopy(ANSWER)
    answer["choices"][0]["finish_reason"] = "length"
    return answer


def _bare() -> dict[str, Any]:
    answer = copy.deepcopy(ANSWER)
    for key in ("id", "created", "usage", "model"):
        del answer[key]
    return answer


CASES = {
    "text": (ANSWER, {"model": "stub"}),
    "truncated": (_truncated(), {"model": "stub"}),
    "no id, created, usage or model": (_bare(), {"model": "m", "parallel_tool_calls": False}),
    "reasoning and a tool call": (
        _answer(
            reasoning_content="think first",
            tool_calls=[{"id": "c1", "function": {"name": "calc", "arguments": {"x": 1}}}],
        ),
        {
            "model": "stub",
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "calc"}},
        },
    ),
    "only a tool call": (
        _answer(content=None, tool_calls=[{"function": {"name": "calc", "arguments": "{}"}}]),
        {"model": "stub", "tools": TOOLS},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_answer_is_its_validated_dump(case: str) -> None:
    answer, params = CASES[case]
    for text in ("first of its shape", "again", "and again, other text"):
        answer = copy.deepcopy(answer)
        message = answer["choices"][0]["message"]
        if message.get("content"):
            message["content"] = text
        response = from_chat_completion(answer, params)
        dumped = Response.model_validate(response).to_dict(mode="json")
        assert json.dumps(response) == json.dumps(dumped)  # same keys, same order, same values
        texts = [i["content"][0]["text"] for i in response["output"] if i["type"] == "message"]
        assert texts == ([text] if message.get("content") else [])


def test_usage_and_status_come_from_the_answer() -> None:
    response = from_chat_completion(_truncated(), {"model": "stub"})
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"]["input_tokens"] == 10 and response["usage"]["total_tokens"] == 15
    assert response["id"] == "chatcmpl-1" and response["model"] == "stub"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("id", 5, "id"), ("model", 3, "model"), ("created", "yesterday", "created_at")],
)
def test_a_wrong_value_is_refused_after_good_answers_of_its_shape(
    field: str, value: Any, named: str
) -> None:
    from_chat_completion(ANSWER, {"model": "stub"})
    bad = {**copy.deepcopy(ANSWER), field: value}
    with pytest.raises(ProtocolError, match=named):
        from_chat_completion(bad, {"model": "stub"})


def test_a_tool_call_without_a_name_is_refused_after_named_ones() -> None:
    named = _answer(content=None, tool_calls=[{"function": {"name": "calc", "arguments": "{}"}}])
    from_chat_completion(named, {"model": "stub", "tools": TOOLS})
    unnamed = _answer(content=None, tool_calls=[{"function": {"arguments": "{}"}}])
    with pytest.raises(ProtocolError):
        from_chat_completion(unnamed, {"model": "stub", "tools": TOOLS})


def test_item_ids_are_distinct_and_in_openai_style() -> None:
    ids = [from_chat_completion(_bare(), {"model": "m"}) for _ in range(2000)]
    item_ids = [r["output"][0]["id"] for r in ids] + [r["id"] for r in ids]
    assert len(set(item_ids)) == len(item_ids)
    assert all(re.fullmatch(r"(msg|resp)_[0-9a-f]{24}", i) for i in item_ids)

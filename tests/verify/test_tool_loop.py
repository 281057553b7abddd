"""The multi-turn tool loop against our verifier server's tools, with a scripted stub model."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gym_operator.protocol import response as protocol
from gym_operator.rollout.tool_loop import ToolLoopError, run_tool_loop
from gym_operator.verify.base import response_text

TOOLS = [
    {
        "type": "function",
        "name": "calculator",
        "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
    }
]
TASK = {
    "responses_create_params": {"input": "What is 6 times 7?", "tools": TOOLS},
    "expected_answer": "42",
}


def call_item(name: str, arguments: str, call_id: str) -> dict[str, Any]:
    return protocol.function_call_item(call_id, name, arguments)


def message_item(text: str) -> dict[str, Any]:
    return protocol.message_item(text)


class ScriptedModel:
    """Answers with the next scripted output items; records the inputs it was sent."""

    def __init__(self, *turns: list[dict[str, Any]]) -> None:
        self.turns = list(turns)
        self.inputs: list[list[dict[str, Any]]] = []

    async def __call__(self, params: dict[str, Any]) -> dict[str, Any]:
        self.inputs.append(json.loads(json.dumps(params["input"])))
        output = self.turns.pop(0) if self.turns else [message_item("done")]
        usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        return {"output": output, "usage": usage, "status": "completed"}


async def test_model_tool_model_then_verify(verifier_server, http) -> None:
    url = await verifier_server("math", workers=1)
    model = ScriptedModel(
        [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            call_item("calculator", '{"expression": "6*7"}', "c1"),
        ],
        [message_item("The calculator says 42, so \\boxed{42}.")],
    )
    result = await run_tool_loop(model, http, url, TASK, TASK["responses_create_params"], 8)
    output = result.response["output"]
    assert [item["type"] for item in output] == [
        "reasoning",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert json.loads(output[2]["output"]) == {"result": "42"} and output[2]["call_id"] == "c1"
    assert result.turns == 2 and result.response["usage"]["total_tokens"] == 30
    # the second model call saw the question, its own call and the tool output, no reasoning
    assert [item.get("type", "message") for item in model.inputs[1]] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert "gymops_session=" in result.session_headers["Cookie"]
    body = {**TASK, "response": result.response}
    async with http.post(f"{url}/verify", json=body, headers=result.session_headers) as resp:
        assert (await resp.json())["reward"] == 1.0


async def test_max_turns_bounds_a_model_that_never_stops_calling(verifier_server, http) -> None:
    url = await verifier_server("math", workers=1)
    forever = [[call_item("calculator", '{"expression": "1+1"}', f"c{i}")] for i in range(10)]
    model = ScriptedModel(*forever)
    result = await run_tool_loop(model, http, url, TASK, TASK["responses_create_params"], 3)
    assert result.turns == 3
    kinds = [item["type"] for item in result.response["output"]]
    assert kinds == ["function_call", "function_call_output"] * 3
    assert response_text(result.response) == ""


async def test_model_mistakes_become_tool_outputs(verifier_server, http) -> None:
    url = await verifier_server("math", workers=1)
    model = ScriptedModel(
        [
            call_item("calculator", "{not json", "c1"),
            call_item("no_such_tool", "{}", "c2"),
            call_item("calculator", '{"expression": "__import__(\'os\')"}', "c3"),
        ],
        [message_item("\\boxed{42}")],
    )
    result = await run_tool_loop(model, http, url, TASK, TASK["responses_create_params"], 4)
    outputs = [
        i["output"] for i in result.response["output"] if i["type"] == "function_call_output"
    ]
    assert "not JSON" in outputs[0]
    assert "unknown tool" in outputs[1]
    assert "unsupported" in outputs[2]
    assert response_text(result.response) == "\\boxed{42}"


async def test_truncated_turn_ends_the_loop(verifier_server, http) -> None:
    url = await verifier_server("math", workers=1)

    async def truncated(params: dict[str, Any]) -> dict[str, Any]:
        return {
            "output": [call_item("calculator", '{"expression": "1"}', "c1")],
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
        }

    result = await run_tool_loop(truncated, http, url, TASK, TASK["responses_create_params"], 5)
    assert result.turns == 1 and result.response["status"] == "incomplete"


async def test_unreachable_verifier_is_a_tool_loop_error(http) -> None:
    with pytest.raises(ToolLoopError, match="seed_session"):
        await run_tool_loop(
            ScriptedModel(), http, "http://127.0.0.1:9", TASK, TASK["responses_create_params"], 2
        )

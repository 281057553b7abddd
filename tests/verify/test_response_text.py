"""Which text is scored: the final assistant message, reasoning removed."""

from __future__ import annotations

import pytest

from gym_operator.verify.base import response_text, strip_reasoning


@pytest.mark.parametrize(
    ("text", "final"),
    [
        ("plain answer", "plain answer"),
        ("<think>scratch \\boxed{1}</think>\n\\boxed{2}", "\\boxed{2}"),
        ("<THINK>a</THINK>b<think>c</think>d", "bd"),
        ("reasoning whose opening tag was in the prompt</think> answer", "answer"),
        ("<think>never closed \\boxed{3}", ""),
        ("answer first <think>then reasoning cut off", "answer first"),
    ],
)
def test_strip_reasoning(text: str, final: str) -> None:
    assert strip_reasoning(text) == final


def test_response_text_reads_only_assistant_output_text() -> None:
    response = {
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hidden"}]},
            {"type": "function_call", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "output": "tool says 5"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "A"}],
            },
            "garbage item",
            {"type": "message", "role": "assistant", "content": [{"type": "refusal"}, "junk"]},
            {"type": "message", "content": [{"type": "output_text", "text": "B"}]},
        ]
    }
    assert response_text(response) == "AB"
    assert response_text({}) == ""

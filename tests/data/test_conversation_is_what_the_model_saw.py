"""The exported SFT conversation is the one the model saw: the prompt as the generator's chat
request sent it, the answer as the model wrote it, for every shape a NeMo Gym input may take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datakit import msg, read_rows

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data import rows
from gym_operator.data.builder import build_dataset
from gym_operator.data.synthetic import write_rollouts
from gym_operator.protocol import response as protocol
from gym_operator.rollout.client import chat_request
from gym_operator.storage.store import Storage
from gym_operator.viewer import conversation

PARAMS: dict[str, Any] = {
    "instructions": "Be brief.",
    "input": [
        {"role": "developer", "content": "Answer in digits."},  # no type: a message
        {"type": None, "role": "user", "content": "Earlier question."},  # null type: a message
        {"type": None, "content": "Show your work."},  # and without a role: the user's
        {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No"}]},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is 2 + 2? "},
                {"type": "input_image", "image_url": "https://example.test/cat.png"},
                "Think.",
            ],
        },
    ],
}
ANSWER = {
    "id": "chatcmpl-1",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "4"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}
SENT = [
    msg("system", "Be brief."),
    msg("system", "Answer in digits."),
    msg("user", "Earlier question."),
    msg("user", "Show your work."),
    msg("assistant", ""),
    msg("user", "What is 2 + 2? Think."),
]


def rollout() -> dict[str, Any]:
    response = protocol.from_chat_completion(ANSWER, PARAMS)
    return {
        "responses_create_params": PARAMS,
        "expected_answer": "4",
        "response": response,
        "reward": 1.0,
        "_ng_task_index": 0,
        "_ng_rollout_index": 0,
    }


def test_the_sft_row_holds_the_prompt_the_chat_request_sent(tmp_path: Path) -> None:
    sent = chat_request(PARAMS, "m")["messages"]
    assert [msg(m["role"], m["content"]) for m in sent] == SENT
    source = f"file://{tmp_path}/rollouts"
    write_rollouts(Storage(), source, [rollout()], num_repeats=1)
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source}],
            "kind": "sft",
            "format": "nemo-rl",
            "sft": {"selection": "all"},
            "output": {"uri": f"file://{tmp_path}/sft", "fileFormat": "jsonl"},
        }
    )
    summary = build_dataset(
        spec, name="saw", source_uris=[source], output_uri=spec.output.uri, storage=Storage()
    )
    (row,) = read_rows(summary)["train"] + read_rows(summary)["validation"]
    assert row["messages"] == [*SENT, msg("assistant", "4")]


def test_the_viewer_and_the_filters_read_the_same_text() -> None:
    row = rollout()
    shown = [t for t in conversation.turns(row) if t["kind"] == "message"]
    assert [(t["role"], t["text"]) for t in shown] == [
        ("system", "Be brief."),
        ("developer", "Answer in digits."),
        ("user", "Earlier question."),
        ("user", "Show your work."),
        ("assistant", "No"),  # a refusal is shown, though no text was sent back for it
        ("user", "What is 2 + 2? Think."),
        ("assistant", "4"),
    ]
    assert rows.response_text(row) == protocol.response_text(row["response"]) == "4"
    assert rows.is_truncated(row) is False

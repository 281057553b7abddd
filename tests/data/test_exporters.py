"""Each exporter's rows for hand-made rollouts, field by field (formats per research/formats.md)."""

from __future__ import annotations

import json

import pytest
from datakit import Build, msg
from pydantic import ValidationError

from gym_operator.data.exporters import UnsupportedExport, check_supported
from gym_operator.data.synthetic import rollout_row as row

PROMPT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "input_text", "text": "What is 6*7?"}]},
]
CHAT_PROMPT = [msg("system", "Be brief."), msg("user", "What is 6*7?")]
CALL = {"name": "calc", "arguments": '{"expr": "6*7"}', "call_id": "call_1"}
TOOLS = [{"type": "function", "name": "calc", "parameters": {"type": "object"}}]


def tool_rollouts() -> list[dict]:
    rows = [
        row(0, 0, "It is 42.", 1.0, prompt=PROMPT, tool_calls=[CALL], expected_answer="42"),
        row(0, 1, "It is 41.", 0.0, prompt=PROMPT, expected_answer="42"),
    ]
    for r in rows:
        r["responses_create_params"]["tools"] = TOOLS
    return rows


ASSISTANT_WITH_CALL = msg(
    "assistant",
    "It is 42.",
    [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "calc", "arguments": '{"expr": "6*7"}'},
        }
    ],
)
CHAT_TOOLS = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]


def test_trl_sft_prompt_completion_with_tools_as_json_string(build: Build) -> None:
    _, rows = build(tool_rollouts(), kind="sft", num_repeats=2)
    assert rows["train"] == [
        {
            "prompt": CHAT_PROMPT,
            "completion": [ASSISTANT_WITH_CALL],
            "tools": json.dumps(CHAT_TOOLS),
        }
    ]


def answer_after_tool_output() -> list[dict]:
    """One rollout that calls calc, reads its output, then answers."""
    rollout = row(0, 0, "It is 42.", 1.0, prompt=PROMPT, expected_answer="42")
    rollout["response"]["output"][:0] = [
        {"type": "function_call", **CALL},
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    ]
    return [rollout]


CALL_ONLY = msg("assistant", "", ASSISTANT_WITH_CALL["tool_calls"])
TOOL_OUTPUT = msg("tool", "42", tool_call_id="call_1")


@pytest.mark.parametrize("fmt", ["trl", "openrlhf"])
def test_tool_outputs_go_to_the_prompt_by_default(build: Build, fmt: str) -> None:
    """Prompt/completion rows give no loss to the prompt: tool outputs go there (sft.toolTurns)."""
    _, rows = build(answer_after_tool_output(), kind="sft", format=fmt, num_repeats=1)
    [out] = rows["train"]
    prompt, completion = (
        (out["prompt"], out["completion"])
        if fmt == "trl"
        else (
            out["input"],
            out["output"],
        )
    )
    assert prompt == [*CHAT_PROMPT, CALL_ONLY, TOOL_OUTPUT]
    assert completion == [msg("assistant", "It is 42.")]


def test_tool_turns_completion_keeps_the_whole_response(build: Build) -> None:
    _, rows = build(
        answer_after_tool_output(), kind="sft", num_repeats=1, sft={"toolTurns": "completion"}
    )
    [out] = rows["train"]
    assert out["prompt"] == CHAT_PROMPT
    assert out["completion"] == [CALL_ONLY, TOOL_OUTPUT, msg("assistant", "It is 42.")]


def test_verl_and_nemo_rl_sft_keep_tool_turns_in_the_conversation(build: Build) -> None:
    """Their SFT datasets train assistant turns only, so the conversation stays whole."""
    _, rows = build(
        answer_after_tool_output(),
        kind="sft",
        format="verl",
        num_repeats=1,
        output={"fileFormat": "parquet"},
    )
    [out] = rows["train"]
    assert out["messages"] == [*CHAT_PROMPT, CALL_ONLY, TOOL_OUTPUT, msg("assistant", "It is 42.")]


def test_openrlhf_rows(build: Build, tmp_path) -> None:
    _, rows = build(tool_rollouts(), kind="dpo", format="openrlhf", num_repeats=2)
    assert rows["train"] == [
        {
            "prompt": CHAT_PROMPT,
            "chosen": [ASSISTANT_WITH_CALL],
            "rejected": [msg("assistant", "It is 41.")],
            "tools": json.dumps(CHAT_TOOLS),
        }
    ]


def test_openrlhf_rl_rows(build: Build) -> None:
    _, rows = build(
        tool_rollouts(),
        kind="rl",
        format="openrlhf",
        num_repeats=2,
        job_spec={"verifier": {"builtin": "math"}},
    )
    [out] = rows["train"]
    assert out["input"] == CHAT_PROMPT
    assert out["label"] == "42" and out["datasource"] == "gymops/math"
    assert json.loads(out["tools"]) == CHAT_TOOLS


def test_verl_rl_parquet_row(build: Build) -> None:
    _, rows = build(
        tool_rollouts(),
        kind="rl",
        format="verl",
        num_repeats=2,
        output={"fileFormat": "parquet"},
        job_spec={"verifier": {"builtin": "math"}},
    )
    [out] = rows["train"]
    assert out["data_source"] == "gymops/math"
    assert out["prompt"] == CHAT_PROMPT
    assert out["ability"] == "math"
    assert out["reward_model"] == {"style": "rule", "ground_truth": "42"}
    info = out["extra_info"]
    assert (info["split"], info["index"], info["task_index"], info["pass_rate"]) == (
        "train",
        0,
        0,
        0.5,
    )
    assert json.loads(info["task"]) == {"expected_answer": "42"}
    assert json.loads(info["tools"]) == CHAT_TOOLS


def test_verl_sft_messages_keep_tool_calls_in_parquet(build: Build) -> None:
    _, rows = build(
        tool_rollouts(),
        kind="sft",
        format="verl",
        num_repeats=2,
        output={"fileFormat": "parquet"},
    )
    [out] = rows["train"]
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant"]
    call = out["messages"][2]["tool_calls"][0]
    assert call["function"] == {"name": "calc", "arguments": '{"expr": "6*7"}'}
    # verl hands `tools` to the chat template as they are: nested, not JSON text
    assert out["tools"] == CHAT_TOOLS


def test_verl_sft_parquet_takes_a_tool_without_parameters(build: Build) -> None:
    rollouts = tool_rollouts()
    for r in rollouts:
        r["responses_create_params"]["tools"] = [
            {"type": "function", "name": "now", "parameters": {}}
        ]
    _, rows = build(
        rollouts, kind="sft", format="verl", num_repeats=2, output={"fileFormat": "parquet"}
    )
    [out] = rows["train"]
    assert out["tools"] == [{"type": "function", "function": {"name": "now", "parameters": None}}]


def test_nemo_rl_rows(build: Build, tmp_path) -> None:
    _, rows = build(tool_rollouts(), kind="dpo", format="nemo-rl", num_repeats=2)
    assert rows["train"] == [
        {
            "context": CHAT_PROMPT,
            "completions": [
                {"rank": 0, "completion": [ASSISTANT_WITH_CALL]},
                {"rank": 1, "completion": [msg("assistant", "It is 41.")]},
            ],
            "tools": json.dumps(CHAT_TOOLS),
        }
    ]


def test_nemo_rl_rl_rows_are_gym_rows_with_agent_ref(build: Build) -> None:
    rollouts = tool_rollouts()
    _, rows = build(
        rollouts,
        kind="rl",
        format="nemo-rl",
        num_repeats=2,
        job_spec={"verifier": {"builtin": "math"}},
    )
    [out] = rows["train"]
    assert out["responses_create_params"] == rollouts[0]["responses_create_params"]
    assert out["expected_answer"] == "42"
    assert out["agent_ref"] == {"type": "responses_api_agents", "name": "math_simple_agent"}
    assert "response" not in out and "reward" not in out


def test_nemo_gym_sft_passes_the_rollout_through(build: Build) -> None:
    rollouts = tool_rollouts()
    _, rows = build(rollouts, kind="sft", format="nemo-gym", num_repeats=2)
    assert rows["train"] == [rollouts[0]]


def test_trl_string_input_becomes_a_user_message(build: Build) -> None:
    _, rows = build([row(0, 0, "hi", 1.0, prompt="Say hi")], kind="sft", num_repeats=1)
    assert rows["train"][0]["prompt"] == [msg("user", "Say hi")]


@pytest.mark.parametrize(
    ("fmt", "kind"), [("verl", "dpo"), ("openrlhf", "kto"), ("nemo-rl", "kto")]
)
def test_unsupported_kind_is_refused_by_name(build: Build, fmt: str, kind: str) -> None:
    """The spec itself is refused (pydantic here, the CRD's CEL rule at kubectl apply)."""
    with pytest.raises(ValidationError, match=f"format {fmt} has no loader for this kind"):
        build([row(0, 0, "x", 1.0)], kind=kind, format=fmt, num_repeats=1)
    with pytest.raises(UnsupportedExport, match=f"spec.format '{fmt}' has no loader"):
        check_supported(fmt, kind)


@pytest.mark.parametrize(
    ("fmt", "kind", "file_format"),
    [("nemo-rl", "sft", "parquet"), ("nemo-rl", "rl", "parquet"), ("nemo-gym", "sft", "parquet")],
)
def test_file_types_the_framework_cannot_read_are_refused(
    build: Build, fmt: str, kind: str, file_format: str
) -> None:
    """NeMo-RL's dataset classes and NeMo Gym's tools read JSON lines only."""
    with pytest.raises(ValidationError, match=f"format {fmt} reads only output.fileFormat jsonl"):
        build([row(0, 0, "x", 1.0)], kind=kind, format=fmt, output={"fileFormat": file_format})

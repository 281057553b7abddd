"""NeMo-RL and NeMo Gym exports against NeMo-RL's documented and asserted schema.

NeMo-RL cannot be installed here: its PyPI package (nemo-rl 0.0.0) is a placeholder and its
source needs Python >= 3.13 and a source checkout. So these tests load the files the way its
classes do (`datasets.load_dataset("json")` for OpenAIFormatDataset and PreferenceDataset, one raw
line per row + `json.loads` for NemoGymDataset) and check what those classes and processors assert
(research/formats.md section 4): the last message is the assistant's; exactly two completions with
distinct ranks, lower preferred; a Gym row with responses_create_params.input and agent_ref.name.
Every conversation is also rendered with the ChatML tokenizer, as the processors do.
"""

from __future__ import annotations

import json

import pytest
from formatkit import files

pytestmark = pytest.mark.formats


def load_json(paths: list[str]):
    from datasets import load_dataset

    return load_dataset("json", data_files=paths)["train"]


def test_openai_format_sft(exported, tokenizer) -> None:
    """As OpenAIFormatDataset(use_preserving_dataset=True) reads rows with tools: json.loads."""
    summary = exported[("nemo-rl", "sft", "jsonl")]
    [path] = files(summary)
    dataset = [json.loads(line) for line in open(path)]
    assert len(dataset) == summary.splits.train
    for row in dataset:
        messages = row["messages"]
        assert messages[-1]["role"] == "assistant"
        assert all(isinstance(m["content"], str) for m in messages)
        assert row["message_loss_mask"] == [0] * (len(messages) - 1) + [1]
        tools = row["tools"] or None
        text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)
        assert text.endswith("<|im_end|>\n") and "The answer is" in text
        assert text.startswith("<|im_start|>system\nTools: ") == bool(tools)


def test_preference_dataset_rank_format(exported, tokenizer) -> None:
    summary = exported[("nemo-rl", "dpo", "jsonl")]
    dataset = load_json(files(summary))
    assert len(dataset) == summary.splits.train
    for row in dataset:
        assert isinstance(row["context"], list) and row["context"][-1]["role"] == "user"
        completions = row["completions"]
        assert len(completions) == 2
        ranks = [c["rank"] for c in completions]
        assert ranks[0] != ranks[1]
        chosen = min(completions, key=lambda c: c["rank"])["completion"]
        assert [m["role"] for m in chosen] == ["assistant"]
        text = tokenizer.apply_chat_template(row["context"] + chosen, tokenize=False)
        assert text.count("<|im_start|>assistant") == 1


def test_nemo_gym_dataset_rows_for_grpo(exported) -> None:
    summary = exported[("nemo-rl", "rl", "jsonl")]
    [path] = files(summary)
    with open(path) as fh:
        raw_lines = [line for line in fh]  # NemoGymDataset keeps each line verbatim
    assert len(raw_lines) == summary.splits.train
    for line in raw_lines:
        row = json.loads(line)  # nemo_gym_data_processor
        assert row["agent_ref"] == {"type": "responses_api_agents", "name": "math_simple_agent"}
        params = row["responses_create_params"]
        assert isinstance(params["input"], list | str) and params["input"]
        assert row["expected_answer"].isdigit()
        assert "response" not in row and "reward" not in row


def test_nemo_gym_passthrough_keeps_rollouts_and_tasks(exported) -> None:
    [sft_path] = files(exported[("nemo-gym", "sft", "jsonl")])
    [rl_path] = files(exported[("nemo-gym", "rl", "jsonl")])
    rollouts = [json.loads(line) for line in open(sft_path)]
    assert all(
        {"response", "reward", "_ng_task_index", "_ng_rollout_index"} <= set(r) for r in rollouts
    )
    tasks = [json.loads(line) for line in open(rl_path)]
    assert all("responses_create_params" in t and "response" not in t for t in tasks)

"""TRL 1.16 loads every trl export: its data utilities, then one real training step per kind.

The trainers run on CPU with a tiny random Llama and the offline ChatML tokenizer; DPO and KTO
get an explicit ref_model so nothing is fetched from the Hub.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from formatkit import TRL_COLUMNS, files

pytestmark = pytest.mark.formats

KINDS = ("sft", "dpo", "rl", "kto")


def load(exported, kind: str, file_format: str) -> Any:
    from datasets import load_dataset

    summary = exported[("trl", kind, file_format)]
    builder = "json" if file_format == "jsonl" else "parquet"
    return load_dataset(builder, data_files={"train": files(summary)}, split="train")


@pytest.fixture(scope="module")
def tiny_model(tokenizer) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def one_step(tmp_path) -> dict[str, Any]:
    return {
        "output_dir": str(tmp_path),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "use_cpu": True,
        "report_to": [],
        "save_strategy": "no",
        "bf16": False,
    }


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
@pytest.mark.parametrize("kind", KINDS)
def test_rows_are_conversational_and_template(exported, tokenizer, kind, file_format) -> None:
    from trl.data_utils import apply_chat_template, is_conversational

    dataset = load(exported, kind, file_format)
    assert len(dataset) == exported[("trl", kind, file_format)].splits.train
    for example in dataset:
        assert is_conversational(example)
        tools = example.get("tools")
        tools = json.loads(tools) if isinstance(tools, str) else tools  # as the trainers do
        keys = TRL_COLUMNS[kind]
        text = apply_chat_template({k: example[k] for k in keys}, tokenizer, tools=tools)
        assert text["prompt"].startswith("<|im_start|>")
        assert text["prompt"].endswith("<|im_start|>assistant\n")
        if tools:
            assert text["prompt"].startswith("<|im_start|>system\nTools: ")
        for key in ("completion", "chosen", "rejected"):
            if key in text:
                assert text[key].startswith("The answer is ") and text[key].endswith("<|im_end|>\n")


def test_tool_calls_survive_into_the_templated_completion(exported, tokenizer) -> None:
    from trl.data_utils import apply_chat_template

    for file_format in ("jsonl", "parquet"):
        example = load(exported, "sft", file_format)[0]
        text = apply_chat_template(
            {"prompt": example["prompt"], "completion": example["completion"]}, tokenizer
        )
        assert '<tool_call>calc {"expr": "0+0"}</tool_call>' in text["completion"]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_sft_trainer_trains_one_step(
    exported, tokenizer, tiny_model, tmp_path, file_format
) -> None:
    from trl import SFTConfig, SFTTrainer

    trainer = SFTTrainer(
        model=tiny_model,
        args=SFTConfig(max_length=512, **one_step(tmp_path)),
        train_dataset=load(exported, "sft", file_format),
        processing_class=tokenizer,
    )
    assert trainer.train().training_loss > 0


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_dpo_trainer_trains_one_step(
    exported, tokenizer, tiny_model, tmp_path, file_format
) -> None:
    from trl import DPOConfig, DPOTrainer

    trainer = DPOTrainer(
        model=tiny_model,
        ref_model=copy.deepcopy(tiny_model),
        args=DPOConfig(max_length=512, **one_step(tmp_path)),
        train_dataset=load(exported, "dpo", file_format),
        processing_class=tokenizer,
    )
    assert trainer.train().training_loss > 0


def test_kto_trainer_trains_one_step(exported, tokenizer, tiny_model, tmp_path) -> None:
    from trl import KTOConfig, KTOTrainer

    trainer = KTOTrainer(
        model=tiny_model,
        ref_model=copy.deepcopy(tiny_model),
        args=KTOConfig(max_length=512, **one_step(tmp_path)),
        train_dataset=load(exported, "kto", "jsonl"),
        processing_class=tokenizer,
    )
    assert trainer.train().training_loss > 0


def test_grpo_reward_functions_get_ground_truth_and_pass_rate(
    exported, tokenizer, tiny_model, tmp_path
) -> None:
    from trl import GRPOConfig, GRPOTrainer

    seen: dict[str, list] = {}

    def reward(prompts, completions, solution, pass_rate, task, task_id, **kwargs):
        seen.update(solution=solution, pass_rate=pass_rate, task=task, task_id=task_id)
        return [0.0 for _ in completions]

    dataset = load(exported, "rl", "parquet")
    args = GRPOConfig(num_generations=2, max_completion_length=8, **one_step(tmp_path))
    trainer = GRPOTrainer(
        model=tiny_model,
        reward_funcs=reward,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    rows = {r["solution"]: r for r in dataset}
    assert seen["solution"] and all(s in rows for s in seen["solution"])
    # every verifier field of the task reaches the reward function (JSON text of the task's fields)
    assert [json.loads(t)["expected_answer"] for t in seen["task"]] == seen["solution"]
    assert seen["pass_rate"] == [rows[s]["pass_rate"] for s in seen["solution"]]
    assert all(
        i.endswith(f"#{rows[s]['task_index']}")
        for i, s in zip(seen["task_id"], seen["solution"], strict=True)
    )


def load_sample(realistic_sample, kind: str, file_format: str) -> Any:
    from datasets import load_dataset

    summary = realistic_sample("trl", kind, file_format)
    builder = "json" if file_format == "jsonl" else "parquet"
    return load_dataset(builder, data_files={"train": files(summary)}, split="train")


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
@pytest.mark.parametrize("kind", ["sft", "dpo", "kto"])
def test_trainers_train_one_step_on_realistic_rows(
    realistic_sample, tokenizer, tiny_model, tmp_path, kind, file_format
) -> None:
    """Many files, tool calls and tool outputs, multi-turn and system prompts: one step each."""
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, SFTConfig, SFTTrainer

    dataset = load_sample(realistic_sample, kind, file_format)
    assert any(json.loads(t) for t in dataset["tools"])
    trainer_class, config_class = {
        "sft": (SFTTrainer, SFTConfig),
        "dpo": (DPOTrainer, DPOConfig),
        "kto": (KTOTrainer, KTOConfig),
    }[kind]
    extra = {} if kind == "sft" else {"ref_model": copy.deepcopy(tiny_model)}
    trainer = trainer_class(
        model=tiny_model,
        args=config_class(max_length=1024, **one_step(tmp_path)),
        train_dataset=dataset,
        processing_class=tokenizer,
        **extra,
    )
    assert trainer.train().training_loss > 0


def test_sft_completion_holds_no_tool_output(realistic_sample, tokenizer) -> None:
    """sft.toolTurns context (default): tool outputs sit in the prompt, which gets no loss."""
    dataset = load_sample(realistic_sample, "sft", "jsonl")
    assert any(m["role"] == "tool" for row in dataset["prompt"] for m in row)
    assert not any(m["role"] == "tool" for row in dataset["completion"] for m in row)

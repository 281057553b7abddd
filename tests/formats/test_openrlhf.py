"""OpenRLHF 0.11.2's own dataset classes load every openrlhf export (PromptDataset, SFTDataset,
RewardDataset), through its own `blending_datasets` loader, with the flags the card documents.

OpenRLHF is installed with --no-deps (its full requirements pin flash-attn, deepspeed and vllm);
the classes only read `strategy.args.data.<key>`, so a SimpleNamespace strategy stands in.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from formatkit import files

pytestmark = pytest.mark.formats


def strategy(**data: Any) -> SimpleNamespace:
    return SimpleNamespace(
        args=SimpleNamespace(
            data=SimpleNamespace(apply_chat_template=True, tokenizer_chat_template=None, **data)
        ),
        is_rank_0=lambda: True,
        print=lambda *a, **k: None,
    )


def blended(exported, kind: str, file_format: str, strat: SimpleNamespace) -> Any:
    from openrlhf.datasets.utils import blending_datasets

    [path] = files(exported[("openrlhf", kind, file_format)])
    return blending_datasets(path, None, strat)


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_sft_dataset(exported, tokenizer, file_format) -> None:
    from openrlhf.datasets import SFTDataset

    strat = strategy(input_key="input", output_key="output", multiturn=False)
    dataset = SFTDataset(
        blended(exported, "sft", file_format, strat), tokenizer, 512, strat, num_processors=1
    )
    assert len(dataset) == exported[("openrlhf", "sft", file_format)].splits.train
    input_ids, attention_mask, loss_mask = dataset[0]
    trained = tokenizer.decode(input_ids[loss_mask.bool()])
    # OpenRLHF shifts the mask one token left (it marks the tokens that predict the response)
    assert trained.lstrip("\n").startswith("The answer is 0.<tool_call>calc")
    assert tokenizer.decode(input_ids[0]).startswith("<|im_start|>system\nAnswer with a number.")


def test_reward_dataset_for_dpo_with_prompt_key(exported, tokenizer) -> None:
    from openrlhf.datasets import RewardDataset

    strat = strategy(prompt_key="prompt", chosen_key="chosen", rejected_key="rejected")
    data = blended(exported, "dpo", "parquet", strat)
    dataset = RewardDataset(data, tokenizer, 512, strat, is_dpo=True, num_processors=1)
    assert len(dataset) == exported[("openrlhf", "dpo", "parquet")].splits.train
    chosen_ids, _, rejected_ids, _, prompt_len = dataset[0]
    prompt = tokenizer.decode(chosen_ids[0][:prompt_len])
    assert prompt.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(chosen_ids[0][prompt_len:]).startswith("The answer is 0.<tool_call>")
    assert tokenizer.decode(rejected_ids[0][prompt_len:]).startswith("The answer is 1.")


@pytest.mark.xfail(
    strict=True,
    reason="datasets>=4.7 reads JSON message lists whose keys differ between rows (tool_calls on"
    " some) as List(Json), and Dataset.map keeps that feature for RewardDataset's same-named output"
    " column `chosen`; with tool calls in DPO pairs, use output.fileFormat: parquet for OpenRLHF",
)
def test_reward_dataset_jsonl_with_mixed_tool_calls(exported, tokenizer) -> None:
    from openrlhf.datasets import RewardDataset

    strat = strategy(prompt_key="prompt", chosen_key="chosen", rejected_key="rejected")
    dataset = RewardDataset(
        blended(exported, "dpo", "jsonl", strat),
        tokenizer,
        512,
        strat,
        is_dpo=True,
        num_processors=1,
    )
    dataset[0]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_prompt_dataset_with_label_and_datasource(exported, tokenizer, file_format) -> None:
    from openrlhf.datasets import PromptDataset

    strat = strategy(input_key="input", label_key="label", image_key="images")
    dataset = PromptDataset(blended(exported, "rl", file_format, strat), tokenizer, strat)
    assert len(dataset) == exported[("openrlhf", "rl", file_format)].splits.train
    items = [dataset[i] for i in range(len(dataset))]
    datasource, prompt, label = items[0][:3]
    assert datasource == "gymops/math"
    assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
    assert label.isdigit()
    # the label is the task's expected_answer: twice the number in its own prompt
    assert all(f"What is {int(i[2]) // 2} + {int(i[2]) // 2}?" in i[1] for i in items)

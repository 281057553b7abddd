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


def test_reward_dataset_jsonl_with_mixed_tool_calls(exported, tokenizer) -> None:
    """Every message has the same keys, so `datasets` types JSONL pairs with and without tool
    calls as one struct (not Json), and RewardDataset's templated `chosen` stays text."""
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
    chosen_ids, _, _, _, prompt_len = dataset[0]
    assert tokenizer.decode(chosen_ids[0][prompt_len:]).startswith("The answer is 0.<tool_call>")


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


def realistic_files(realistic, kind: str, file_format: str) -> tuple[str, int]:
    """A comma-separated list of several realistic files (OpenRLHF loads each on its own), and
    how many rows they hold: the first four (the first tasks have no optional key) and the last."""
    import pyarrow.parquet as pq
    from formatkit import SMALL_FILES

    paths = files(realistic("openrlhf", kind, file_format, SMALL_FILES))
    chosen = paths[:4] + paths[-1:]
    if file_format == "parquet":
        count = sum(pq.ParquetFile(p).metadata.num_rows for p in chosen)
    else:
        count = sum(1 for p in chosen for _ in open(p))
    return ",".join(chosen), count


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_dataset_classes_load_realistic_files_one_by_one(realistic, tokenizer, file_format) -> None:
    from openrlhf.datasets import PromptDataset, RewardDataset, SFTDataset
    from openrlhf.datasets.utils import blending_datasets

    strat = strategy(input_key="input", output_key="output", multiturn=False)
    paths, count = realistic_files(realistic, "sft", file_format)
    sft = SFTDataset(
        blending_datasets(paths, None, strat), tokenizer, 2048, strat, num_processors=1
    )
    assert len(sft) == count
    input_ids, _, loss_mask = sft[len(sft) - 1]
    trained = tokenizer.decode(input_ids[loss_mask.bool()])
    # the answer after the last tool output (or a final tool call), never a tool output
    assert ("The answer is" in trained or "<tool_call>" in trained) and "tool\n" not in trained

    strat = strategy(prompt_key="prompt", chosen_key="chosen", rejected_key="rejected")
    paths, count = realistic_files(realistic, "dpo", file_format)
    data = blending_datasets(paths, None, strat)
    pairs = RewardDataset(data, tokenizer, 2048, strat, is_dpo=True, num_processors=1)
    assert len(pairs) == count
    assert any("<tool_call>" in tokenizer.decode(pairs[i][0][0]) for i in range(len(pairs)))

    strat = strategy(input_key="input", label_key="label", image_key="images")
    paths, count = realistic_files(realistic, "rl", file_format)
    prompts = PromptDataset(blending_datasets(paths, None, strat), tokenizer, strat)
    assert len(prompts) == count
    datasource, prompt, label = prompts[len(prompts) - 1][:3]
    assert prompt.endswith("<|im_start|>assistant\n") and label

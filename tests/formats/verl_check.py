"""Run by test_verl.py in a child process: load verl exports with verl 0.9.1's own classes.

verl needs omegaconf 2.3, whose grammar needs antlr4-python3-runtime 4.9.x, while this project's
math-verify pins antlr 4.13: the Makefile installs omegaconf and antlr 4.9.3 into
.venv/formats-compat, and only this child process puts that directory on its path.
Prints one JSON object with what it found.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"


def realistic(root: str, tokenizer, rl_lists: list[list[str]], sft_files: list[str]) -> dict:
    """RLHFDataset over many realistic files at once; MultiTurnSFTDataset items with tools."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    out: dict = {"rl": []}
    for paths in rl_lists:
        config = OmegaConf.create(
            {
                "prompt_key": "prompt",
                "max_prompt_length": 2048,
                "filter_overlong_prompts": True,
                "cache_dir": str(Path(root) / "verl-cache-realistic"),
                "return_raw_chat": True,
            }
        )
        dataset = RLHFDataset(data_files=paths, tokenizer=tokenizer, config=config)
        last = dataset[len(dataset) - 1]
        batch = collate_fn([dataset[0], last])
        out["rl"].append(
            {
                "len": len(dataset),
                "batch": len(batch["index"]),
                "last_raw_prompt_roles": [m["role"] for m in last["raw_prompt"]],
                "last_task_id": last["extra_info"]["task_id"],
            }
        )
    config = OmegaConf.create(
        {"messages_key": "messages", "tools_key": "tools", "max_length": 4096}
    )
    sft = MultiTurnSFTDataset(parquet_files=sft_files, tokenizer=tokenizer, config=config)
    with_tools = [i for i in range(len(sft)) if sft.tools[i]][:20]
    trained = []
    for i in [0, len(sft) - 1, *with_tools]:
        item = sft[i]
        trained.append(tokenizer.decode(item["input_ids"][item["loss_mask"].bool()]))
    out["sft"] = {"len": len(sft), "with_tools": len(with_tools), "trained": trained}
    return out


def main(root: str, rl_files: list[str], sft_file: str, reward_file: str) -> None:
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn
    from verl.utils.import_utils import load_extern_object

    tokenizer = AutoTokenizer.from_pretrained(Path(root) / "tok")
    out: dict = {"rl": {}}
    for path in rl_files:
        config = OmegaConf.create(
            {
                "prompt_key": "prompt",
                "max_prompt_length": 512,
                "filter_overlong_prompts": True,
                "cache_dir": str(Path(root) / "verl-cache"),
                "return_raw_chat": True,
            }
        )
        dataset = RLHFDataset(data_files=[path], tokenizer=tokenizer, config=config)
        items = [dataset[i] for i in range(len(dataset))]
        batch = collate_fn(items)
        out["rl"][Path(path).suffix] = {
            "len": len(dataset),
            "keys": sorted(items[0]),
            "batch_keys": sorted(batch),
            "raw_prompt": items[0]["raw_prompt"],
            "data_source": items[0]["data_source"],
            "reward_model": items[0]["reward_model"],
            "extra_info": items[0]["extra_info"],
            "index": int(items[0]["index"]),
        }
    config = OmegaConf.create(
        {
            "messages_key": "messages",
            "tools_key": "tools",
            "max_length": 1024,
            "truncation": "error",
        }
    )
    sft = MultiTurnSFTDataset(parquet_files=[sft_file], tokenizer=tokenizer, config=config)
    item = sft[0]
    out["sft"] = {
        "len": len(sft),
        "keys": sorted(item),
        "trained": tokenizer.decode(item["input_ids"][item["loss_mask"].bool()]),
        "text": tokenizer.decode(item["input_ids"]),
    }
    compute_score = load_extern_object(reward_file, "compute_score")
    out["reward_fn"] = getattr(compute_score, "__name__", "")
    out["scores"] = {
        "gsm8k": compute_score("openai/gsm8k", "so #### 4", "4"),
        "gymops_right": compute_score("gymops/math", "so \\boxed{4}", "4", {"task": "{}"}),
        "gymops_wrong": compute_score("gymops/math", "so \\boxed{5}", "4", {"task": "{}"}),
    }
    if len(sys.argv) > 5:
        rl_lists = [group.split(",") for group in sys.argv[5].split(";")]
        out["realistic"] = realistic(root, tokenizer, rl_lists, sys.argv[6].split(","))
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4])

"""verl 0.9.1 loads the verl exports with RLHFDataset + collate_fn (rl, parquet and jsonl) and
MultiTurnSFTDataset (sft, parquet), and can load gymops' custom reward function.

verl runs in a child process (see verl_check.py for why); its result comes back as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from formatkit import SMALL_FILES, files

from gym_operator.verify import verl_reward

pytestmark = pytest.mark.formats

COMPAT = Path(sys.prefix) / "formats-compat"


@pytest.fixture(scope="module")
def verl_result(exported, realistic, tokenizer, format_root) -> dict:
    assert COMPAT.is_dir(), f"{COMPAT} missing: run `make venv-formats` (part of `make test`)"
    rl = [f for ff in ("parquet", "jsonl") for f in files(exported[("verl", "rl", ff)])]
    [sft] = files(exported[("verl", "sft", "parquet")])
    realistic_rl = ";".join(
        ",".join(files(realistic("verl", "rl", ff, SMALL_FILES))) for ff in ("jsonl", "parquet")
    )
    realistic_sft = ",".join(files(realistic("verl", "sft", "parquet", SMALL_FILES)))
    env = {
        "PYTHONPATH": str(COMPAT),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HOME": str(format_root),
    }
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("verl_check.py")),
            str(format_root),
            ",".join(rl),
            sft,
            verl_reward.__file__,
            realistic_rl,
            realistic_sft,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_rlhf_dataset_rows(verl_result, exported, suffix) -> None:
    rl = verl_result["rl"][suffix]
    assert rl["len"] == exported[("verl", "rl", suffix.strip("."))].splits.train
    assert {"data_source", "prompt", "raw_prompt", "reward_model", "extra_info", "index"} <= set(
        rl["keys"]
    )
    assert set(rl["keys"]) <= set(rl["batch_keys"])
    assert rl["raw_prompt"] == [
        {
            "role": "system",
            "content": "Answer with a number.",
            "tool_calls": [],
            "tool_call_id": "",
        },
        {"role": "user", "content": "What is 0 + 0?", "tool_calls": [], "tool_call_id": ""},
    ]
    assert rl["data_source"] == "gymops/math"
    assert rl["reward_model"] == {"style": "rule", "ground_truth": "0"}
    assert rl["extra_info"]["split"] == "train" and rl["index"] == 0
    assert json.loads(rl["extra_info"]["task"]) == {"expected_answer": "0", "task_type": "math"}


def test_multiturn_sft_dataset_masks_only_the_answer(verl_result, exported) -> None:
    sft = verl_result["sft"]
    assert sft["len"] == exported[("verl", "sft", "parquet")].splits.train
    assert {"input_ids", "loss_mask"} <= set(sft["keys"])
    assert sft["trained"].startswith('The answer is 0.<tool_call>calc {"expr": "0+0"}</tool_call>')
    assert sft["text"].startswith("<|im_start|>system\nTools: ")


def test_verl_loads_and_calls_the_custom_reward_function(verl_result) -> None:
    """Loaded by verl's own loader, in verl's environment (antlr 4.9 for omegaconf)."""
    assert verl_result["reward_fn"] == "compute_score"
    scores = verl_result["scores"]
    assert scores["gsm8k"] == 1.0  # other data sources go to verl's default_compute_score
    assert scores["gymops_right"]["score"] == 1.0
    assert scores["gymops_wrong"]["score"] == 0.0


def test_custom_reward_scores_with_the_rollouts_verifier() -> None:
    extra = {"task": json.dumps({"expected_answer": "4"})}
    assert verl_reward.compute_score("gymops/math", "so \\boxed{4}", "4", extra)["score"] == 1.0
    assert verl_reward.compute_score("gymops/math", "so \\boxed{5}", "4", extra)["score"] == 0.0


@pytest.mark.parametrize(("position", "file_format"), [(0, "jsonl"), (1, "parquet")])
def test_rlhf_dataset_reads_many_realistic_files(
    verl_result, realistic, position, file_format
) -> None:
    """RLHFDataset types each file on its own and concatenates: dozens of files, some of whose
    own rows have no tool call, all load (JSON lines as well as parquet)."""
    rl = verl_result["realistic"]["rl"][position]
    summary = realistic("verl", "rl", file_format, SMALL_FILES)
    assert len(files(summary)) > 10
    assert rl["len"] == summary.splits.train and rl["batch"] == 2
    assert rl["last_raw_prompt_roles"][-1] == "user"
    assert rl["last_task_id"].startswith(summary.sources[0].uri.rstrip("/") + "#")


def test_multiturn_sft_dataset_masks_tool_outputs_in_realistic_rows(verl_result, realistic) -> None:
    sft = verl_result["realistic"]["sft"]
    assert sft["len"] == realistic("verl", "sft", "parquet", SMALL_FILES).splits.train
    assert sft["with_tools"] == 20
    for trained in sft["trained"]:
        assert "The answer is" in trained or "<tool_call>" in trained
        assert "<|im_start|>tool" not in trained and "<|im_start|>user" not in trained

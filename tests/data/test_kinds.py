"""Each kind (sft, dpo, rl, kto) on hand-made rollouts with exactly known output."""

from __future__ import annotations

import pytest
from datakit import Build, msg

from gym_operator.api.dataset import PairingSpec
from gym_operator.data.kinds import select_pairs
from gym_operator.data.synthetic import rollout_row as row


def completions(rows: list[dict]) -> list[str]:
    return [r["completion"][0]["content"] for r in rows]


def test_sft_best_takes_the_top_reward_first_on_ties(build: Build) -> None:
    rollouts = [row(0, i, f"r{i}", r) for i, r in enumerate([0.5, 0.9, 0.9, 0.1])]
    summary, rows = build(rollouts, kind="sft")
    assert completions(rows["train"]) == ["r1"]
    assert rows["train"][0]["prompt"] == [msg("user", "Question 0?")]
    assert summary.counts.dropped == {"not_selected": 3}


def test_sft_all_above_threshold(build: Build) -> None:
    rollouts = [row(0, i, f"r{i}", r) for i, r in enumerate([0.5, 0.9, 0.8, 0.1])]
    summary, rows = build(
        rollouts, kind="sft", sft={"selection": "all"}, filters={"minReward": 0.8, "dedup": "none"}
    )
    assert completions(rows["train"]) == ["r1", "r2"]
    assert summary.counts.dropped == {"below_min_reward": 2}


@pytest.mark.parametrize(
    ("rewards", "strategy", "gap", "cap", "expected"),
    [
        ([1.0, 0.0, 0.5, 0.5], "best_vs_worst", 0.1, 1, [(0, 1)]),
        ([1.0, 0.0, 0.6, 0.5], "best_vs_worst", 0.1, 2, [(0, 1), (2, 3)]),
        ([1.0, 0.0, 0.55, 0.5], "best_vs_worst", 0.1, 2, [(0, 1)]),  # second gap 0.05 < 0.1
        ([0.7, 0.7, 0.7, 0.7], "best_vs_worst", 0.1, 4, []),  # ties never paired
        ([1.0, 0.95], "best_vs_worst", 0.1, 1, []),
        ([1.0, 0.0, 0.5], "all_pairs", 0.1, 10, [(0, 1), (0, 2), (2, 1)]),
        ([1.0, 0.0, 0.5], "all_pairs", 0.6, 10, [(0, 1)]),
        ([1.0, 1.0, 0.0], "all_pairs", 0.1, 2, [(0, 2), (1, 2)]),
    ],
)
def test_pair_selection(rewards, strategy, gap, cap, expected) -> None:
    spec = PairingSpec(strategy=strategy, min_quality_difference=gap, max_pairs_per_prompt=cap)
    assert select_pairs(rewards, spec) == expected


def test_dpo_rows_are_explicit_prompt_pairs(build: Build) -> None:
    rollouts = [row(0, i, f"r{i}", r) for i, r in enumerate([0.2, 1.0, 0.6, 0.0])]
    rollouts += [row(1, i, f"s{i}", 1.0) for i in range(4)]  # all tied: no pair
    summary, rows = build(rollouts, kind="dpo", pairing={"minQualityDifference": 0.5})
    assert rows["train"] == [
        {
            "prompt": [msg("user", "Question 0?")],
            "chosen": [msg("assistant", "r1")],
            "rejected": [msg("assistant", "r3")],
            "tools": "[]",
        }
    ]
    assert summary.counts.kept == 1
    assert summary.counts.dropped == {"unpaired": 6}


def test_rl_rows_carry_ground_truth_and_pass_rate(build: Build) -> None:
    rollouts = [
        row(0, i, f"r{i}", r, expected_answer="42", task_type="math")
        for i, r in enumerate([1.0, 0.0, 1.0, 0.0])
    ]
    summary, rows = build(rollouts, kind="rl")
    source = summary.sources[0].uri.rstrip("/")
    assert rows["train"] == [
        {
            "prompt": [msg("user", "Question 0?")],
            "solution": "42",
            "solutions": ["42"],
            "tools": "[]",
            "source": source,
            "task_index": 0,
            "task_id": f"{source}#0",
            "pass_rate": 0.5,
            "mean_reward": 0.5,
            "num_rollouts": 4,
            "task": '{"expected_answer": "42", "task_type": "math"}',
        }
    ]
    assert summary.counts.input == 4 and summary.counts.kept == 1


def test_kto_labels_each_response(build: Build) -> None:
    rollouts = [row(0, i, f"r{i}", r) for i, r in enumerate([1.0, 0.0, 0.8, 1.0])]
    _, rows = build(rollouts, kind="kto", kto={"desirableMinReward": 0.8})
    assert [(r["completion"][0]["content"], r["label"]) for r in rows["train"]] == [
        ("r0", True),
        ("r1", False),
        ("r2", True),
        ("r3", True),
    ]

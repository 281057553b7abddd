"""Splits by the rendered prompt: one prompt in any shape, from any source, lands in one split."""

from __future__ import annotations

from pathlib import Path

from datakit import read_rows

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data.builder import build_dataset
from gym_operator.data.synthetic import rollout_row, write_rollouts
from gym_operator.storage.store import Storage

SYSTEM = "Answer briefly."
PROMPTS = 120


def shapes(question: str) -> list[tuple[object, dict]]:
    """(input, extra request fields): five ways of writing the same prompt."""
    return [
        ([{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}], {}),
        (question, {"instructions": SYSTEM}),
        ([{"role": "user", "content": question}], {"instructions": SYSTEM}),
        (
            [
                {"role": "developer", "content": [{"type": "input_text", "text": SYSTEM}]},
                {"role": "user", "content": [{"type": "input_text", "text": question}]},
            ],
            {},
        ),
        (
            [
                {"type": "message", "role": "system", "content": f"  {SYSTEM}\n"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": question}],
                },
            ],
            {},
        ),
    ]


def source_rows(shape_indices: list[int], answer_suffix: str) -> list[dict]:
    """One task per (prompt, shape): tasks differ in shape and in their verifier fields."""
    rows, task = [], 0
    for p in range(PROMPTS):
        for s in shape_indices:
            prompt, extra = shapes(f"What is {p} squared?")[s]
            for rep, reward in enumerate([1.0, 0.0]):
                row = rollout_row(
                    task,
                    rep,
                    f"answer {rep}",
                    reward,
                    prompt=prompt,
                    expected_answer=f"{p * p}{answer_suffix}",
                )
                row["responses_create_params"].update(extra)
                rows.append(row)
            task += 1
    return rows


def test_one_prompt_in_every_shape_and_source_shares_a_split(tmp_path: Path) -> None:
    storage = Storage()
    sources = [f"file://{tmp_path}/a", f"file://{tmp_path}/b"]
    write_rollouts(storage, sources[0], source_rows([0, 1, 2], ""), num_repeats=2)
    write_rollouts(storage, sources[1], source_rows([3, 4], ".0"), num_repeats=2, num_shards=3)
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": u} for u in sources],
            "kind": "rl",
            "format": "trl",
            "split": {"validationFraction": 0.5, "seed": 11},
            "output": {"uri": f"file://{tmp_path}/out"},
        }
    )
    summary = build_dataset(
        spec, name="split", source_uris=sources, output_uri=spec.output.uri, storage=storage
    )
    rows = read_rows(summary)
    split_of_question: dict[str, set[str]] = {}
    for split, split_rows in rows.items():
        for row in split_rows:
            question = row["prompt"][-1]["content"]
            split_of_question.setdefault(question, set()).add(split)
    assert len(split_of_question) == PROMPTS
    assert all(len(s) == 1 for s in split_of_question.values()), "a prompt is in both splits"
    per_split = [sum(s == {name} for s in split_of_question.values()) for name in rows]
    assert min(per_split) >= PROMPTS // 4  # both splits get prompts (half each in expectation)
    assert summary.counts.kept == PROMPTS * 5  # every task is kept: nothing merged away


def test_row_identity_is_unique_across_sources(tmp_path: Path) -> None:
    """Two RolloutJobs both number their tasks from 0: source + task index tells them apart."""
    storage = Storage()
    sources = [f"file://{tmp_path}/a", f"file://{tmp_path}/b"]
    for uri in sources:
        write_rollouts(storage, uri, source_rows([0], ""), num_repeats=2)
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": u} for u in sources],
            "kind": "rl",
            "format": "verl",
            "output": {"uri": f"file://{tmp_path}/out"},
        }
    )
    summary = build_dataset(
        spec, name="ids", source_uris=sources, output_uri=spec.output.uri, storage=storage
    )
    infos = [r["extra_info"] for r in read_rows(summary)["train"]]
    assert len(infos) == 2 * PROMPTS
    assert len({i["task_id"] for i in infos}) == 2 * PROMPTS
    assert {i["source"] for i in infos} == {u for u in sources}
    assert {i["task_index"] for i in infos} == set(range(PROMPTS))

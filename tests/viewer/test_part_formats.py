"""The index, row fetch and text search read every part format the generator writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data.builder import build_dataset
from gym_operator.data.synthetic import rollout_row, write_rollouts
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.viewer.dataset import DatasetView
from gym_operator.viewer.job import JobView
from gym_operator.viewer.search import TextSearch


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz", ".jsonl", ".parquet"])
def test_every_part_format(tmp_path: Path, suffix: str) -> None:
    rows = [
        rollout_row(t, r, f"answer {t}-{r}", float(r % 2), task_type="odd" if t % 2 else "even")
        for t in range(6)
        for r in range(3)
    ]
    uri = f"file://{tmp_path}/out/"
    write_rollouts(Storage(), uri, rows, num_shards=2, num_repeats=3, part_rows=4, suffix=suffix)
    view = JobView(Storage(), parse_uri(uri), None)
    view.start(interval=0.1)
    deadline = time.monotonic() + 60
    while view.indexing:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    numbers, _ = view.overview()
    assert numbers["counts"]["rollouts"] == 18 and numbers["counts"]["tasks"] == 6
    assert {t["taskType"]: t["rollouts"] for t in numbers["taskTypes"]} == {"even": 9, "odd": 9}
    columns, _, _ = view.index.snapshot()
    for i in range(len(columns["kind"])):
        row = view.row(int(columns["part"][i]), int(columns["line"][i]))
        assert row["_ng_task_index"] == columns["task"][i]
        assert row["_ng_rollout_index"] == columns["repeat"][i]
        assert row["reward"] == columns["reward"][i]
    found = TextSearch().matches(view, "ANSWER 4-2", len(columns["kind"]))
    assert [(int(columns["task"][i]), int(columns["repeat"][i])) for i in found.nonzero()[0]] == [
        (4, 2)
    ]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_dataset_rows_page_through_every_file(tmp_path: Path, file_format: str) -> None:
    rows = [
        rollout_row(t, r, f"The answer is {t + r}.", float(r == 0), expected_answer=str(t))
        for t in range(40)
        for r in range(2)
    ]
    source, out = f"file://{tmp_path}/rollouts/", f"file://{tmp_path}/dataset/"
    write_rollouts(Storage(), source, rows, num_repeats=2, part_rows=16)
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source}],
            "kind": "dpo",
            "format": "trl",
            "split": {"validationFraction": 0.0, "seed": 1},
            "output": {"uri": out, "fileFormat": file_format, "rowsPerFile": 7},
        }
    )
    summary = build_dataset(spec, name="d", source_uris=[source], output_uri=out, storage=Storage())
    assert summary.splits.train == 40 and len(summary.files) == 6
    view = DatasetView(Storage(), parse_uri(out))
    seen = []
    for offset in range(0, 40, 9):
        page = view.rows("train", offset, 9)
        assert page["total"] == 40
        seen += [r["row"] for r in page["rows"]]
        assert all(r["view"]["kind"] == "pair" for r in page["rows"])
    prompts = [row["prompt"][-1]["content"] for row in seen]
    assert len(seen) == 40 and len(set(prompts)) == 40
    chosen = seen[0]["chosen"][-1]["content"]
    assert page["rows"][0]["view"]["columns"][0]["label"] == "chosen" and chosen

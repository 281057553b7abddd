"""Fixtures for dataset tests: commit hand-made rollouts, build a dataset, read its rows back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from datakit import Build, read_rows

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data.builder import DatasetSummary, build_dataset
from gym_operator.data.synthetic import write_rollouts
from gym_operator.storage.store import Storage


@pytest.fixture
def storage() -> Storage:
    return Storage()


@pytest.fixture
def build(tmp_path: Path, storage: Storage) -> Build:
    """build(rows, kind=..., **spec fields) -> (summary, rows per split)."""

    def run(
        rollouts: list[dict[str, Any]],
        *,
        num_repeats: int = 4,
        job_spec: dict[str, Any] | None = None,
        **spec: Any,
    ) -> tuple[DatasetSummary, dict[str, list[dict[str, Any]]]]:
        source = f"file://{tmp_path}/rollouts"
        if not (tmp_path / "rollouts").exists():
            write_rollouts(storage, source, rollouts, num_repeats=num_repeats, spec=job_spec)
        body = {
            "sources": [{"uri": source}],
            "format": "trl",
            "filters": {"dedup": "none", "dropTruncated": False, "dropEmpty": False},
            **spec,
            "output": {**spec.get("output", {}), "uri": f"file://{tmp_path}/out"},
        }
        parsed = DatasetSpec.model_validate(body)
        summary = build_dataset(
            parsed, name="t", source_uris=[source], output_uri=parsed.output.uri, storage=storage
        )
        return summary, read_rows(summary)

    return run

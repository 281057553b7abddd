"""Helpers for dataset tests: the build fixture's type and reading written rows back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gym_operator.data.builder import DatasetSummary


def msg(role: str, content: str, tool_calls: list | None = None, tool_call_id: str = "") -> dict:
    """A chat message as every export writes it: the same four keys on every message."""
    return {
        "role": role,
        "content": content,
        "tool_calls": tool_calls or [],
        "tool_call_id": tool_call_id,
    }


Build = Callable[..., tuple[DatasetSummary, dict[str, list[dict[str, Any]]]]]


def read_rows(summary: DatasetSummary) -> dict[str, list[dict[str, Any]]]:
    """Rows written per split (JSONL or Parquet), in file order."""
    out: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for uri in summary.files:
        path = Path(uri.removeprefix("file://"))
        split = path.name.split("-")[0]
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            out[split].extend(pq.read_table(path).to_pylist())
        else:
            out[split].extend(json.loads(line) for line in path.read_text().splitlines())
    return out

"""The rollout index: a few numeric columns per committed row, built part by part.

It holds about 40 bytes a row (numpy columns) and never the rows themselves: a page fetches its
rows from the part files again by (part, position). Parts are immutable once a manifest names
them, so the index only ever appends the parts committed since it last looked.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gym_operator.data import rows as rowlib
from gym_operator.viewer.partfiles import parse_row

ROLLOUT, FAILURE, ERROR = 0, 1, 2
KINDS = ("rollout", "failure", "error")
TRUNCATED, TOOLS = 1, 2
BAD_INPUT = "bad_input"
NO_TYPE = "(no task_type)"

DTYPES: dict[str, Any] = {
    "part": np.int32,
    "line": np.int32,
    "kind": np.uint8,
    "task": np.int64,
    "repeat": np.int32,
    "reward": np.float32,
    "failure": np.int16,
    "task_type": np.int16,
    "flags": np.uint8,
    "tokens": np.int32,
    "created": np.uint32,
}


@dataclass(frozen=True)
class PartRef:
    """One committed file: its shard, commit number, name, kind and row count."""

    shard: int
    seq: int
    name: str
    kind: int
    rows: int


@dataclass
class Tables:
    """Strings the numeric columns point into, and one example message per failure class."""

    task_types: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    _codes: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)

    def code(self, which: str, value: str) -> int:
        """The number of `value` in the table `which` (task_types or failures), added if new."""
        table: list[str] = getattr(self, which)
        codes = self._codes.setdefault(which, {v: i for i, v in enumerate(table)})
        found = codes.get(value)
        if found is None:
            table.append(value)
            found = codes[value] = len(table) - 1
        return found


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def _row_columns(row: dict[str, Any], kind: int, tables: Tables) -> tuple[Any, ...]:
    """(kind, task, repeat, reward, failure, task_type, flags, tokens, created) of one row."""
    task = row.get("_ng_task_index")
    task = task if isinstance(task, int) and not isinstance(task, bool) else -1
    repeat = row.get("_ng_rollout_index")
    repeat = repeat if isinstance(repeat, int) and not isinstance(repeat, bool) else -1
    failure, message = -1, ""
    if kind == FAILURE:
        info = row.get("failure") if isinstance(row.get("failure"), dict) else {}
        name = str(info.get("class") or "unknown")
        failure, message = tables.code("failures", name), str(info.get("message") or "")
    elif kind == ERROR:
        name = BAD_INPUT
        failure, message = tables.code("failures", name), str(row.get("reason") or "")
    if failure >= 0 and tables.failures[failure] not in tables.examples:
        tables.examples[tables.failures[failure]] = {"message": message[:500], "task": task}
    task_type = tables.code("task_types", str(row.get("task_type") or NO_TYPE))
    response = row.get("response") if isinstance(row.get("response"), dict) else {}
    flags = (TRUNCATED if rowlib.is_truncated(row) else 0) | (
        TOOLS if rowlib.has_tool_calls(row) else 0
    )
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    tokens = int(_number(usage.get("output_tokens"), -1))
    created = int(_number(response.get("created_at"), 0))
    reward = rowlib.reward_of(row) if kind == ROLLOUT else None
    return (
        kind,
        task,
        repeat,
        math.nan if reward is None else reward,
        failure,
        task_type,
        flags,
        tokens,
        max(0, min(created, 2**32 - 1)),
    )


def index_lines(part_id: int, kind: int, lines: list[bytes], tables: Tables) -> dict[str, Any]:
    """The columns of one part's rows."""
    values = [_row_columns(parse_row(line), kind, tables) for line in lines]
    names = ("kind", "task", "repeat", "reward", "failure", "task_type", "flags", "tokens")
    names += ("created",)
    columns = {
        name: np.fromiter((v[i] for v in values), DTYPES[name], len(values))
        for i, name in enumerate(names)
    }
    columns["part"] = np.full(len(values), part_id, DTYPES["part"])
    columns["line"] = np.arange(len(values), dtype=DTYPES["line"])
    return columns


class RolloutIndex:
    """The columns of every indexed row; thread-safe appends, consolidated on read."""

    def __init__(self) -> None:
        self.parts: list[PartRef] = []
        self.tables = Tables()
        self.version = 0
        self._lock = threading.Lock()
        self._columns = {name: np.empty(0, dtype) for name, dtype in DTYPES.items()}
        self._pending: list[dict[str, Any]] = []

    def add_part(self, ref: PartRef, columns: dict[str, Any]) -> None:
        """Append one part's columns (its `part` column must be len(self.parts))."""
        with self._lock:
            self.parts.append(ref)
            self._pending.append(columns)
            self.version += 1

    def part(self, part_id: int) -> PartRef:
        """The part with this id."""
        with self._lock:
            return self.parts[part_id]

    def next_part_id(self) -> int:
        """The id the next added part gets."""
        return len(self.parts)

    def snapshot(self) -> tuple[dict[str, Any], list[PartRef], int]:
        """(columns, parts, version) taken together; each column one array."""
        with self._lock:
            if self._pending:
                self._columns = {
                    name: np.concatenate([self._columns[name], *(c[name] for c in self._pending)])
                    for name in DTYPES
                }
                self._pending = []
            return dict(self._columns), list(self.parts), self.version

    def restore(self, columns: dict[str, Any]) -> None:
        """Take whole columns (from the cache) for the parts already listed."""
        with self._lock:
            self._columns = columns
            self._pending = []
            self.version += 1

    def __len__(self) -> int:
        return len(self.snapshot()[0]["kind"])

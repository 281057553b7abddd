"""The job overview computed from the index columns: counts, rewards, pass rates, failures.

Everything here is numpy over the columns of every row; no row is read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gym_operator.viewer.index import ERROR, FAILURE, ROLLOUT, TOOLS, TRUNCATED, Tables

REWARD_BINS = 20
PASS_BINS = 10
THROUGHPUT_POINTS = 60


def row_types(columns: dict[str, Any]) -> Any:
    """Each row's task type code; failure rows (which carry no task fields) take their task's."""
    kind, task, types = columns["kind"], columns["task"], columns["task_type"]
    rollouts = kind == ROLLOUT
    known_tasks, first = np.unique(task[rollouts], return_index=True)
    if not len(known_tasks):
        return types
    known_types = types[rollouts][first]
    where = np.clip(np.searchsorted(known_tasks, task), 0, len(known_tasks) - 1)
    found = (known_tasks[where] == task) & ~rollouts
    return np.where(found, known_types[where], types)


def reward_range(rewards: Any) -> tuple[float, float]:
    """[min(0, lowest), max(1, highest)]: rewards in 0..1 keep that axis."""
    if not len(rewards):
        return 0.0, 1.0
    return min(0.0, float(rewards.min())), max(1.0, float(rewards.max()))


def per_task(columns: dict[str, Any], threshold: float, types: Any = None) -> dict[str, Any]:
    """Per task (sorted by index): rollouts, passes, failures, reward sum and task type code."""
    kind, task = columns["kind"], columns["task"]
    counted = (kind != ERROR) & (task >= 0)
    tasks, first, inverse = np.unique(task[counted], return_index=True, return_inverse=True)
    kinds = kind[counted]
    reward = np.nan_to_num(columns["reward"][counted].astype(np.float64), nan=0.0)
    is_rollout = kinds == ROLLOUT
    passed = is_rollout & (columns["reward"][counted] >= threshold)
    size = len(tasks)
    types = row_types(columns) if types is None else types
    return {
        "task": tasks,
        "type": types[counted][first],
        "rollouts": np.bincount(inverse, weights=is_rollout, minlength=size).astype(np.int64),
        "passed": np.bincount(inverse, weights=passed, minlength=size).astype(np.int64),
        "failures": np.bincount(inverse, weights=kinds == FAILURE, minlength=size).astype(np.int64),
        "reward_sum": np.bincount(inverse, weights=reward * is_rollout, minlength=size),
    }


def _by_type(tasks: dict[str, Any], tables: Tables) -> list[Any]:
    """Per task type, summed from the per-task figures."""
    size = len(tables.task_types)
    codes = tasks["type"]

    def total(name: str) -> Any:
        return np.bincount(codes, weights=tasks[name], minlength=size)

    rollouts, passed, failures = total("rollouts"), total("passed"), total("failures")
    reward_sum, count = total("reward_sum"), np.bincount(codes, minlength=size)
    out = []
    for code, name in enumerate(tables.task_types):
        n = int(rollouts[code])
        if not n and not failures[code]:
            continue
        out.append(
            {
                "taskType": name,
                "rollouts": n,
                "failures": int(failures[code]),
                "passRate": float(passed[code] / n) if n else None,
                "rewardMean": float(reward_sum[code] / n) if n else None,
                "tasks": int(count[code]),
            }
        )
    return out


def _failures(columns: dict[str, Any], tables: Tables) -> list[dict[str, Any]]:
    codes = columns["failure"][columns["kind"] != ROLLOUT]
    counts = np.bincount(codes[codes >= 0], minlength=len(tables.failures))
    rows = [
        {"class": name, "count": int(counts[i]), **tables.examples.get(name, {})}
        for i, name in enumerate(tables.failures)
        if counts[i]
    ]
    return sorted(rows, key=lambda r: -r["count"])


def throughput(created: Any) -> dict[str, Any]:
    """Rollouts finished per minute over the job's life (from `response.created_at`)."""
    created = created[created > 0].astype(np.int64)
    if not len(created):
        return {"start": None, "minutes": [], "perMinute": []}
    start, end = int(created.min()), int(created.max())
    span = max(end - start, 1)
    bucket = max(60, -(-span // THROUGHPUT_POINTS // 60) * 60)
    counts = np.bincount((created - start) // bucket)
    minutes = [(i * bucket + bucket / 2) / 60 for i in range(len(counts))]
    return {"start": start, "minutes": minutes, "perMinute": (counts * 60 / bucket).tolist()}


def overview(
    columns: dict[str, Any], tables: Tables, threshold: float, types: Any = None
) -> dict[str, Any]:
    """The numbers of the overview page; `types` is row_types(columns) when already known."""
    types = row_types(columns) if types is None else types
    kind, reward, flags = columns["kind"], columns["reward"], columns["flags"]
    rollouts = kind == ROLLOUT
    rewards = reward[rollouts & ~np.isnan(reward)]
    low, high = reward_range(rewards)
    tasks = per_task(columns, threshold, types)
    with_rollouts = tasks["rollouts"] > 0
    rates = tasks["passed"][with_rollouts] / tasks["rollouts"][with_rollouts]
    hist = np.histogram(rewards, bins=REWARD_BINS, range=(low, high))[0] if len(rewards) else []
    return {
        "counts": {
            "rows": int(len(kind)),
            "rollouts": int(rollouts.sum()),
            "failures": int((kind == FAILURE).sum()),
            "badInput": int((kind == ERROR).sum()),
            "truncated": int((rollouts & ((flags & TRUNCATED) != 0)).sum()),
            "withToolCalls": int((rollouts & ((flags & TOOLS) != 0)).sum()),
            "tasks": int(len(tasks["task"])),
        },
        "passThreshold": threshold,
        "reward": {
            "mean": float(rewards.mean()) if len(rewards) else None,
            "passRate": float((rewards >= threshold).mean()) if len(rewards) else None,
            "range": [low, high],
            "bins": [int(c) for c in hist],
        },
        "tasksPassed": {
            "never": int((rates == 0).sum()),
            "sometimes": int(((rates > 0) & (rates < 1)).sum()),
            "always": int((rates == 1).sum()),
            "bins": np.histogram(rates, bins=PASS_BINS, range=(0, 1))[0].tolist(),
        },
        "taskTypes": _by_type(tasks, tables),
        "failureClasses": _failures(columns, tables),
        "throughput": throughput(columns["created"][rollouts]),
    }


def task_table(
    columns: dict[str, Any], tables: Tables, threshold: float, offset: int, limit: int, sort: str
) -> dict[str, Any]:
    """A page of tasks: hardest first (`pass_rate`) or by index (`task`)."""
    tasks = per_task(columns, threshold)
    rollouts = tasks["rollouts"]
    rate = np.where(rollouts > 0, tasks["passed"] / np.maximum(rollouts, 1), np.nan)
    order = np.arange(len(rate)) if sort == "task" else np.lexsort((tasks["task"], rate))
    page = order[offset : offset + limit]
    rows = []
    for i in page:
        code = int(tasks["type"][i])
        n = int(rollouts[i])
        rows.append(
            {
                "task": int(tasks["task"][i]),
                "taskType": tables.task_types[code],
                "rollouts": n,
                "passed": int(tasks["passed"][i]),
                "failures": int(tasks["failures"][i]),
                "passRate": None if not n else float(rate[i]),
                "rewardMean": None if not n else float(tasks["reward_sum"][i] / n),
            }
        )
    return {"total": int(len(rate)), "offset": offset, "tasks": rows}

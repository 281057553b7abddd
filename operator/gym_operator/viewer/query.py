"""The rollouts table's filters and sort order, applied to the index columns (no rows read).

Parameters come from the page's query string; a bad one raises QueryError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gym_operator.viewer.index import ERROR, FAILURE, ROLLOUT, TOOLS, TRUNCATED, Tables

SORTS = ("task", "reward", "tokens", "created")
MAX_LIMIT = 500


class QueryError(ValueError):
    """A query parameter that cannot be used; the message names it."""


@dataclass(frozen=True)
class RowQuery:
    """What the rollouts table shows."""

    reward_min: float | None = None
    reward_max: float | None = None
    failure: str | None = None
    """'any' (failures and bad input), 'none' (verified rollouts only) or a failure class."""
    task_type: str | None = None
    truncated: bool | None = None
    tools: bool | None = None
    task: int | None = None
    text: str | None = None
    sort: str = "task"
    desc: bool = False
    offset: int = 0
    limit: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> RowQuery:
        """Parse the query string of /rollouts."""
        sort = params.get("sort") or "task"
        if sort not in SORTS:
            raise QueryError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
        limit = _int(params, "limit", 50)
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit: {limit} is not between 1 and {MAX_LIMIT}")
        return cls(
            reward_min=_float(params, "reward_min"),
            reward_max=_float(params, "reward_max"),
            failure=params.get("failure") or None,
            task_type=params.get("task_type") or None,
            truncated=_bool(params, "truncated"),
            tools=_bool(params, "tools"),
            task=_int(params, "task", None),
            text=(params.get("q") or "").strip() or None,
            sort=sort,
            desc=params.get("order") == "desc",
            offset=max(0, _int(params, "offset", 0) or 0),
            limit=limit or 50,
        )


def _float(params: Mapping[str, str], name: str) -> float | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise QueryError(f"{name}: {raw!r} is not a number") from None


def _int(params: Mapping[str, str], name: str, default: int | None) -> Any:
    raw = (params.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"{name}: {raw!r} is not an integer") from None


def _bool(params: Mapping[str, str], name: str) -> bool | None:
    raw = (params.get(name) or "").strip().lower()
    if raw in ("", "all", "any"):
        return None
    if raw in ("yes", "true", "1"):
        return True
    if raw in ("no", "false", "0"):
        return False
    raise QueryError(f"{name}: {raw!r} is not yes or no")


def _failure_mask(columns: dict[str, Any], tables: Tables, failure: str) -> Any:
    kind = columns["kind"]
    if failure == "any":
        return kind != ROLLOUT
    if failure == "none":
        return kind == ROLLOUT
    if failure not in tables.failures:
        return np.zeros(len(kind), bool)
    return (columns["failure"] == tables.failures.index(failure)) & (kind != ROLLOUT)


def mask_of(columns: dict[str, Any], tables: Tables, query: RowQuery, types: Any) -> Any:
    """Which rows pass every filter but the text search; `types` is each row's task type."""
    mask = np.ones(len(columns["kind"]), bool)
    reward = columns["reward"]
    if query.reward_min is not None:
        mask &= reward >= query.reward_min
    if query.reward_max is not None:
        mask &= reward <= query.reward_max
    if query.failure:
        mask &= _failure_mask(columns, tables, query.failure)
    if query.task_type is not None:
        code = (
            tables.task_types.index(query.task_type) if query.task_type in tables.task_types else -2
        )
        mask &= types == code
    for flag, wanted in ((TRUNCATED, query.truncated), (TOOLS, query.tools)):
        if wanted is not None:
            mask &= ((columns["flags"] & flag) != 0) == wanted
    if query.task is not None:
        mask &= columns["task"] == query.task
    return mask


def order_of(columns: dict[str, Any], ids: Any, sort: str, desc: bool) -> Any:
    """`ids` in the requested order; ties by task, then repeat, then kind."""
    keys = [columns["kind"][ids], columns["repeat"][ids], columns["task"][ids]]
    if sort != "task":
        primary = columns[sort][ids].astype(np.float64)
        if sort == "reward":  # rows without a reward (failures) always last
            primary = np.where(np.isnan(primary), np.inf if not desc else -np.inf, primary)
        keys.append(-primary if desc else primary)
    elif desc:
        keys = [keys[0], -keys[1], -keys[2]]
    return ids[np.lexsort(keys)]


def kind_name(kind: int) -> str:
    """rollout, failure or error."""
    return {ROLLOUT: "rollout", FAILURE: "failure", ERROR: "error"}[kind]

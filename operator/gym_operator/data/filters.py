"""Which rollouts of a task group are kept, with a count for every reason a rollout is dropped.

Order per task group: failures and unverified rollouts (never kept) -> per-task pass-rate window
(on every verified rollout of the task) -> per-response filters (reward bounds, truncated, empty,
length, dedup). Kind `rl` keeps prompts, not responses, so only the first two stages apply to it.
Balancing caps the rows written per value of a task field and runs on the built rows.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gym_operator.api.dataset import BalanceSpec, FilterSpec
from gym_operator.data import rows
from gym_operator.data.reader import TaskGroup

# Reasons, as they appear in status.counts.dropped and the dataset card.
FAILED = "failed"
UNVERIFIED = "unverified"
PASS_RATE = "pass_rate"
BELOW_MIN_REWARD = "below_min_reward"
ABOVE_MAX_REWARD = "above_max_reward"
TRUNCATED = "truncated"
EMPTY = "empty"
NO_FINAL_ANSWER = "no_final_answer"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
DUPLICATE = "duplicate"
BALANCE = "balance_cap"

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True)
class TaskStats:
    """Per-task statistics over its verified rollouts (before response filters)."""

    verified: int
    passed: int
    mean_reward: float

    @property
    def pass_rate(self) -> float:
        """Share of verified rollouts at or above the job's pass threshold."""
        return self.passed / self.verified if self.verified else 0.0


def normalise(text: str) -> str:
    """Text for normalised dedup: NFKC, case-folded, runs of punctuation/space as one space."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _response_key(row: dict[str, Any], normalised: bool) -> str:
    text = rows.response_text(row)
    key = normalise(text) if normalised else text
    if rows.has_tool_calls(row):
        calls = [m.get("tool_calls") for m in rows.completion_messages(row)]
        key += "\x00" + json.dumps(calls, sort_keys=True)
    return key


class Curator:
    """Applies FilterSpec to task groups and counts every dropped rollout by reason."""

    def __init__(self, spec: FilterSpec, responses: bool = True) -> None:
        self.spec = spec
        self.responses = responses
        self.dropped: Counter[str] = Counter()
        self._checks = self._response_checks()

    def curate(
        self, group: TaskGroup, pass_threshold: float
    ) -> tuple[TaskStats, list[dict[str, Any]]] | None:
        """The task's statistics and kept rollouts (by rollout index), or None if none is kept."""
        self.dropped[FAILED] += group.failures
        verified = []
        for row in group.rollouts:
            reward = rows.reward_of(row)
            if reward is None:
                self.dropped[UNVERIFIED] += 1
            else:
                verified.append((reward, row))
        if not verified:
            return None
        verified.sort(key=lambda pair: pair[1]["_ng_rollout_index"])
        rewards = [r for r, _ in verified]
        stats = TaskStats(
            verified=len(rewards),
            passed=sum(r >= pass_threshold for r in rewards),
            mean_reward=sum(rewards) / len(rewards),
        )
        if not self._in_pass_window(stats):
            self.dropped[PASS_RATE] += len(verified)
            return None
        kept = [row for _, row in verified]
        if self.responses:
            kept = self._filter_responses(kept)
        return (stats, kept) if kept else None

    def _in_pass_window(self, stats: TaskStats) -> bool:
        window = self.spec.pass_rate
        if window is None:
            return True
        rate = stats.pass_rate
        if window.exclusive:
            return window.min < rate < window.max
        return window.min <= rate <= window.max

    def _response_checks(self) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
        """(reason, predicate that is True when the rollout must be dropped), in order."""
        spec = self.spec
        checks: list[tuple[str, Callable[[dict[str, Any]], bool]]] = []
        if spec.min_reward is not None:
            low = spec.min_reward
            checks.append((BELOW_MIN_REWARD, lambda r: rows.reward_of(r) < low))  # type: ignore[operator]
        if spec.max_reward is not None:
            high = spec.max_reward
            checks.append((ABOVE_MAX_REWARD, lambda r: rows.reward_of(r) > high))  # type: ignore[operator]
        if spec.drop_truncated:
            checks.append((TRUNCATED, rows.is_truncated))
        if spec.drop_empty:
            checks.append(
                (EMPTY, lambda r: not rows.response_text(r).strip() and not rows.has_tool_calls(r))
            )
            checks.append((NO_FINAL_ANSWER, ends_with_tool_output))
        if spec.min_response_chars is not None:
            shortest = spec.min_response_chars
            checks.append((TOO_SHORT, lambda r: len(rows.response_text(r)) < shortest))
        if spec.max_response_chars is not None:
            longest = spec.max_response_chars
            checks.append((TOO_LONG, lambda r: len(rows.response_text(r)) > longest))
        return checks

    def _filter_responses(self, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        seen: set[str] = set()
        for row in candidates:
            reason = next((name for name, drop in self._checks if drop(row)), None)
            if reason is None and self.spec.dedup != "none":
                key = _response_key(row, self.spec.dedup == "normalized")
                if key in seen:
                    reason = DUPLICATE
                seen.add(key)
            if reason is None:
                kept.append(row)
            else:
                self.dropped[reason] += 1
        return kept


def ends_with_tool_output(row: dict[str, Any]) -> bool:
    """Whether the response stops at a tool output: the model never answered after it.

    Read from the output items themselves (reasoning items aside), which is cheaper than
    building the chat messages.
    """
    output = (row.get("response") or {}).get("output") or []
    for item in reversed(output):
        if isinstance(item, dict) and item.get("type") == "reasoning":
            continue
        return isinstance(item, dict) and item.get("type") == "function_call_output"
    return False


def field_value(task: dict[str, Any], path: str) -> str:
    """A task field by dotted path (e.g. `metadata.task_type`) as a group key."""
    value: Any = task
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return "(missing)"
        value = value[part]
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


class Balancer:
    """Caps the rows written per value of a task field; first come, first kept."""

    def __init__(self, spec: BalanceSpec | None) -> None:
        self.spec = spec
        self.per_group: Counter[str] = Counter()
        self.dropped = 0

    def admit(self, task: dict[str, Any]) -> bool:
        """Whether one more row of this task's group may be written."""
        if self.spec is None:
            return True
        key = field_value(task, self.spec.by)
        if self.per_group[key] >= self.spec.max_per_group:
            self.dropped += 1
            return False
        self.per_group[key] += 1
        return True

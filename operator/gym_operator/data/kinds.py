"""Turning a task's kept rollouts into training examples: sft, dpo, rl and kto.

An `Example` is format-neutral (chat messages plus metadata); exporters turn it into the rows a
framework loads. Rollouts are ordered by rollout index, so every choice here is deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gym_operator.api.dataset import DatasetSpec, KtoSpec, PairingSpec, SftSpec
from gym_operator.data import rows
from gym_operator.data.filters import TaskStats

NOT_SELECTED = "not_selected"
# Reward gaps are compared with this tolerance, so 0.6 - 0.5 counts as a gap of 0.1.
GAP_TOLERANCE = 1e-9
UNPAIRED = "unpaired"


@dataclass
class Example:
    """One output row before formatting."""

    kind: str
    task: dict[str, Any]
    task_index: int
    source: int
    stats: TaskStats
    prompt: list[rows.Message]
    tools: list[dict[str, Any]] | None = None
    completion: list[rows.Message] | None = None
    reward: float | None = None
    chosen: list[rows.Message] | None = None
    rejected: list[rows.Message] | None = None
    chosen_reward: float | None = None
    rejected_reward: float | None = None
    label: bool | None = None
    rollout: dict[str, Any] | None = None


def _base(kind: str, first: dict[str, Any], source: int, stats: TaskStats) -> dict[str, Any]:
    return {
        "kind": kind,
        "task": rows.task_fields(first),
        "task_index": first["_ng_task_index"],
        "source": source,
        "stats": stats,
        "prompt": rows.prompt_messages(first),
        "tools": rows.tools_of(first),
    }


def _best_first(kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Highest reward first; ties keep rollout order."""
    return sorted(kept, key=lambda r: -float(r["reward"]))


class ExampleBuilder:
    """Builds the examples of one kind and counts the usable rollouts it leaves out."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.kind = spec.kind
        self.sft = spec.sft or SftSpec()
        self.pairing = spec.pairing or PairingSpec()
        self.kto = spec.kto or KtoSpec()
        self.dropped: Counter[str] = Counter()

    def build(self, source: int, stats: TaskStats, kept: list[dict[str, Any]]) -> Iterator[Example]:
        """The examples of one task (kept rollouts in rollout-index order)."""
        if self.kind == "rl":
            yield Example(**_base("rl", kept[0], source, stats))
        elif self.kind == "sft":
            yield from self._sft(source, stats, kept)
        elif self.kind == "dpo":
            yield from self._dpo(source, stats, kept)
        else:
            yield from self._kto(source, stats, kept)

    def _single(self, row: dict[str, Any], source: int, stats: TaskStats) -> Example:
        return Example(
            **_base(self.kind, row, source, stats),
            completion=rows.completion_messages(row),
            reward=float(row["reward"]),
            rollout=row,
        )

    def _sft(self, source: int, stats: TaskStats, kept: list[dict[str, Any]]) -> Iterator[Example]:
        chosen = kept if self.sft.selection == "all" else _best_first(kept)[:1]
        self.dropped[NOT_SELECTED] += len(kept) - len(chosen)
        for row in chosen:
            yield self._single(row, source, stats)

    def _kto(self, source: int, stats: TaskStats, kept: list[dict[str, Any]]) -> Iterator[Example]:
        for row in kept:
            example = self._single(row, source, stats)
            example.label = float(row["reward"]) >= self.kto.desirable_min_reward
            yield example

    def _dpo(self, source: int, stats: TaskStats, kept: list[dict[str, Any]]) -> Iterator[Example]:
        pairs = select_pairs([float(r["reward"]) for r in kept], self.pairing)
        used = {i for pair in pairs for i in pair}
        self.dropped[UNPAIRED] += len(kept) - len(used)
        for best, worst in pairs:
            chosen, rejected = kept[best], kept[worst]
            yield Example(
                **_base("dpo", chosen, source, stats),
                chosen=rows.completion_messages(chosen),
                rejected=rows.completion_messages(rejected),
                chosen_reward=float(chosen["reward"]),
                rejected_reward=float(rejected["reward"]),
            )


def select_pairs(rewards: list[float], pairing: PairingSpec) -> list[tuple[int, int]]:
    """(chosen, rejected) index pairs; the gap is at least minQualityDifference, never a tie.

    best_vs_worst pairs the best with the worst, then the second best with the second worst, and
    so on (each response used once). all_pairs takes every pair with enough gap, largest gap
    first. Both stop at maxPairsPerPrompt; equal rewards keep rollout order.
    """
    order = sorted(range(len(rewards)), key=lambda i: (-rewards[i], i))
    gap = pairing.min_quality_difference - GAP_TOLERANCE
    limit = pairing.max_pairs_per_prompt
    pairs: list[tuple[int, int]] = []
    if pairing.strategy == "best_vs_worst":
        lo, hi = 0, len(order) - 1
        while lo < hi and len(pairs) < limit:
            best, worst = order[lo], order[hi]
            if rewards[best] - rewards[worst] < gap or rewards[best] == rewards[worst]:
                break
            pairs.append((best, worst))
            lo, hi = lo + 1, hi - 1
        return pairs
    candidates = [
        (rewards[a] - rewards[b], a, b)
        for x, a in enumerate(order)
        for b in order[x + 1 :]
        if rewards[a] - rewards[b] >= gap and rewards[a] > rewards[b]
    ]
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(a, b) for _, a, b in candidates[:limit]]

"""SlotSet: a compact set of integers stored as sorted half-open intervals.

A rollout's slot within its shard is `task_index * num_repeats + rollout_index`. Work proceeds
roughly in task order, so the done set is a long run plus a few gaps and stays small in a manifest.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator


class SlotSet:
    """Sorted, non-overlapping, non-adjacent [start, end) intervals."""

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in sorted(intervals):
            self.add_range(start, end)

    def add(self, slot: int) -> None:
        """Add one slot."""
        self.add_range(slot, slot + 1)

    def add_range(self, start: int, end: int) -> None:
        """Add every slot in [start, end)."""
        if end <= start:
            return
        i = bisect.bisect_left(self._ends, start)
        j = bisect.bisect_right(self._starts, end)
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def update(self, other: SlotSet) -> None:
        """Add every slot of another set."""
        for start, end in other.intervals():
            self.add_range(start, end)

    def __contains__(self, slot: int) -> bool:
        i = bisect.bisect_right(self._starts, slot) - 1
        return i >= 0 and slot < self._ends[i]

    def __len__(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlotSet) and self.intervals() == other.intervals()

    def __repr__(self) -> str:
        return f"SlotSet({self.intervals()})"

    def intervals(self) -> list[tuple[int, int]]:
        """The intervals, in order."""
        return list(zip(self._starts, self._ends, strict=True))

    def __iter__(self) -> Iterator[int]:
        for start, end in self.intervals():
            yield from range(start, end)

"""Garbage-collector settings of a process that samples rollouts (local mode, generator pod)."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net allocations of tracked objects between two collections of the youngest generation
(Python's default: 700). A window of a few hundred requests keeps thousands of young objects
(coroutines, futures, requests, answers) alive at once, so at 700 the collector ran every few
rollouts and pushed them into the older generations, whose collections then scanned every object
start-up had built: measured, about 0.1 ms a rollout at c=256 (`bench/run.py --scenario L1-256`),
against a few ms for a whole run at 10,000. Garbage only the collector frees (reference cycles)
waits longer for it: a few MB at most."""


def settle() -> None:
    """Freeze what start-up built (modules, spec, clients) out of the collector's sight and collect
    young garbage less often. Called once, by the process's entry point, before it samples."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)

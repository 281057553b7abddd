"""On resume, retryable failure rows go back in the queue: their slots are undone, their rows gone.

One manifest write does it: the shard's failure files that hold retryable rows are rewritten
without them (new names; a manifest names only what exists), those slots leave the done set, the
counts drop, and `runs` records per slot how many runs have failed so far. A crash before that
write changes nothing; after it the slots are sampled again, so a retried rollout still ends as
exactly one row. A slot is retried while its failed runs are below `retry.maxRolloutRuns`.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable
from typing import Any

from gym_operator.protocol.failures import FailureClass
from gym_operator.protocol.rows import ROLLOUT_INDEX, TASK_INDEX
from gym_operator.rollout import parts
from gym_operator.rollout.breaker import ENDPOINT_CLASSES
from gym_operator.storage import layout
from gym_operator.storage.manifest import ShardManifest, write_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI

log = logging.getLogger(__name__)

TRANSIENT = ENDPOINT_CLASSES
RETRYABLE = TRANSIENT | {name.verifying() for name in TRANSIENT} | {FailureClass.VERIFIER_TOOL}
"""Failure classes another run may fix; http_4xx and verifier_unscorable never change."""


def is_retryable(failure: dict[str, Any]) -> bool:
    """Whether another run of this rollout may succeed."""
    return bool(failure.get("masked")) or failure.get("class") in RETRYABLE


def requeue_failures(
    storage: Storage,
    prefix: StorageURI,
    manifest: ShardManifest,
    max_runs: int,
    slot_of: Callable[[int, int], int],
) -> ShardManifest:
    """The manifest with its retryable failures undone (written), or the same one if none."""
    updated = manifest.model_copy(deep=True)
    directory = layout.shard_dir(prefix, manifest.shard)
    undone: list[int] = []
    for part in updated.parts:
        if not part.failures_file:
            continue
        rows = parts.read_part_rows(
            part.failures_file, storage.read_bytes(directory.join(part.failures_file))
        )
        keep = [row for row in rows if not _take(row, updated, max_runs, slot_of, undone)]
        if len(keep) == len(rows):
            continue
        part.failures = len(keep)
        part.failures_file = _rewrite(storage, directory, part.seq, keep)
    if not undone:
        return manifest
    updated.done = _without(updated.done, sorted(undone))
    updated.finished = False
    write_manifest(storage, prefix, updated, reseal=True)
    log.info("shard %d: %d failed rollouts sampled again", manifest.shard, len(undone))
    return updated


def _take(
    row: dict[str, Any],
    manifest: ShardManifest,
    max_runs: int,
    slot_of: Callable[[int, int], int],
    undone: list[int],
) -> bool:
    """Whether this failure row is retried (then the manifest forgets it)."""
    failure = row.get("failure") or {}
    slot = slot_of(int(row[TASK_INDEX]), int(row[ROLLOUT_INDEX]))
    runs = manifest.runs.get(slot, 0) + 1
    if not is_retryable(failure) or runs >= max_runs:
        return False
    manifest.runs[slot] = runs
    manifest.failed -= 1
    name = str(failure.get("class"))
    left = manifest.failure_classes.get(name, 1) - 1
    if left > 0:
        manifest.failure_classes[name] = left
    else:
        manifest.failure_classes.pop(name, None)
        manifest.failure_examples.pop(name, None)
    undone.append(slot)
    return True


def _rewrite(
    storage: Storage, directory: StorageURI, seq: int, rows: list[dict[str, Any]]
) -> str | None:
    if not rows:
        return None
    name = layout.failures_name(seq).replace(".jsonl", f".r{time.time_ns()}.jsonl")
    storage.write_bytes(directory.join(name), parts.encode_jsonl(rows))
    return name


def _without(intervals: list[tuple[int, int]], removed: list[int]) -> list[tuple[int, int]]:
    """Half-open intervals minus the (sorted) removed slots."""
    out: list[tuple[int, int]] = []
    for start, end in intervals:
        pos = start
        lo, hi = bisect.bisect_left(removed, start), bisect.bisect_left(removed, end)
        for slot in removed[lo:hi]:
            if slot > pos:
                out.append((pos, slot))
            pos = slot + 1
        if pos < end:
            out.append((pos, end))
    return out

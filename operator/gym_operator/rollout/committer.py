"""The part buffer and the manifest of one shard: rows wait here until a commit makes them exist.

Rows collect in a part buffer; a commit encodes and uploads them in a thread, then writes the
manifest that names them (storage.manifest). A row not committed does not exist: after a kill its
slot is sampled again. Counts are one value (storage.tally.Tally) added up three ways: the buffer's
tally goes into the manifest at commit, and every count also goes into the live tally the shard
reports from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gym_operator import metrics
from gym_operator.api.rolloutjob import FailurePolicySpec, OutputSpec
from gym_operator.protocol import rows as protocol_rows
from gym_operator.rollout import failure_policy, parts
from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    PartEntry,
    ShardManifest,
    commit_part,
    read_all_manifests,
    write_manifest,
    write_success,
)
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import Storage
from gym_operator.storage.tally import Tally
from gym_operator.storage.uri import StorageURI

log = logging.getLogger(__name__)


@dataclass
class PartBuffer:
    """Rows waiting for the next commit, their slots and their counts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    slots: SlotSet = field(default_factory=SlotSet)
    tally: Tally = field(default_factory=Tally)

    def __len__(self) -> int:
        return len(self.rows) + len(self.failures) + len(self.errors)


class ShardCommitter:
    """Owns one shard's part buffer and manifest; commits are serialized and run in a thread."""

    def __init__(
        self,
        storage: Storage,
        prefix: StorageURI,
        manifest: ShardManifest,
        *,
        output: OutputSpec,
        live: Tally | None = None,
        line_counts: asyncio.Future[list[int]] | None = None,
        claimed: asyncio.Event | None = None,
        limit: Callable[[], int] | None = None,
    ) -> None:
        self.storage = storage
        self.prefix = prefix
        self.output = output
        self.live = live if live is not None else Tally()
        """Committed and buffered counts, for progress reports (the caller's, e.g. its stats)."""
        self.suffix = parts.part_suffix(output.format, output.compression)
        self.done = manifest.done_slots()
        """Slots committed before this run (skipped by the producer)."""
        self._manifest = manifest
        self._buffer = PartBuffer()
        self._lock = asyncio.Lock()
        self._flush = asyncio.Event()
        self._line_counts = line_counts
        self._lines: int | None = None
        self._claimed = claimed
        """Set once the prefix is this job's; commits wait for it (None: it is already)."""
        self._limit = limit
        """The shard's concurrency limit now, written into each manifest it commits."""

    @property
    def manifest(self) -> ShardManifest:
        """The manifest as last committed."""
        return self._manifest

    def __len__(self) -> int:
        return len(self._buffer)

    def add_rollout(self, slot: int, row: dict[str, Any], passed: bool, truncated: bool) -> None:
        """Buffer one rollout row (its `reward` counted)."""
        buf = self._buffer
        buf.rows.append(row)
        buf.slots.add(slot)
        for tally in (buf.tally, self.live):
            tally.count_rollout(row["reward"], passed, truncated)

    def add_failure(self, slot: int, identity: tuple[int, int], failure: dict[str, Any]) -> None:
        """Buffer one failure row; `runs` counts this run and the failed runs before it."""
        runs = self._manifest.runs.get(slot, 0) + 1
        row = protocol_rows.failure_row(identity, {**failure, "runs": runs})
        buf = self._buffer
        buf.failures.append(row)
        buf.slots.add(slot)
        for tally in (buf.tally, self.live):
            tally.count_failure(str(failure["class"]))

    def add_bad_row(self, first_slot: int, repeats: int, row: dict[str, Any]) -> None:
        """Buffer one bad input row; all its repeats' slots end with it."""
        buf = self._buffer
        buf.errors.append(row)
        buf.slots.add_range(first_slot, first_slot + repeats)
        for tally in (buf.tally, self.live):
            tally.count_bad_row()

    def request_flush(self) -> None:
        """Commit soon (the buffer reached output.partRows)."""
        self._flush.set()

    async def run_timer(self) -> None:
        """Commit when asked, and at least every output.partSeconds (runs until cancelled)."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that lands
        # as the event is set, and this loop would then wait a whole partSeconds more.
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(started + self.output.part_seconds):
                    await self._flush.wait()
            self._flush.clear()
            await self.commit()

    async def commit(self) -> None:
        """Commit what is buffered (nothing to do when empty); waits until the prefix is claimed."""
        if self._claimed is not None:
            await self._claimed.wait()
        async with self._lock:
            if self._lines is None and self._line_counts is not None:
                shard = self._manifest.shard
                self._lines = (await asyncio.shield(self._line_counts))[shard]
            buf, self._buffer = self._buffer, PartBuffer()
            if not len(buf):
                return
            limit = self._limit() if self._limit is not None else None
            upload = asyncio.ensure_future(asyncio.to_thread(self._commit_sync, buf, limit))
            try:
                await asyncio.shield(upload)
            except asyncio.CancelledError:
                # The thread goes on regardless: hold the lock until it is done, so no other
                # commit starts from the manifest it is about to replace.
                await asyncio.wait([upload])
                raise
            metrics.PARTS_COMMITTED.inc()

    def _commit_sync(self, buf: PartBuffer, limit: int | None) -> None:
        current = self._manifest
        seq = current.next_seq()
        entry = PartEntry(
            seq=seq, rollouts=len(buf.rows), failures=len(buf.failures), errors=len(buf.errors)
        )
        files = self._encode(buf, entry)
        committed = commit_part(self.storage, self.prefix, current, files, entry, buf.slots)
        committed.add(buf.tally)
        committed.concurrency_limit = limit
        for row in buf.failures:
            failure = row["failure"]
            committed.note_failure_example(str(failure["class"]), str(failure.get("message", "")))
        if self._lines is not None:
            # Bad rows are tasks whose slots end as input errors, not rollouts.
            committed.expected_rollouts = (
                self._lines - committed.input_errors
            ) * committed.num_repeats
        write_manifest(self.storage, self.prefix, committed)
        self._manifest = committed
        log.debug("shard %d committed part %d (%d rows)", committed.shard, seq, len(buf))

    def _encode(self, buf: PartBuffer, entry: PartEntry) -> dict[str, bytes]:
        """The part's files by name (and their names set on `entry`)."""
        files: dict[str, bytes] = {}
        if buf.rows:
            entry.rollouts_file = layout.part_name(entry.seq, self.suffix)
            files[entry.rollouts_file] = parts.encode_part(
                buf.rows, self.output.format, self.output.compression
            )
        if buf.failures:
            entry.failures_file = layout.failures_name(entry.seq)
            files[entry.failures_file] = parts.encode_jsonl(buf.failures)
        if buf.errors:
            entry.errors_file = layout.errors_name(entry.seq)
            files[entry.errors_file] = parts.encode_jsonl(buf.errors)
        return files

    def finish(self, expected_rollouts: int) -> None:
        """Mark the shard finished (blocking: call in a thread, after the last commit)."""
        manifest = self._manifest.model_copy()
        manifest.finished = True
        manifest.expected_rollouts = expected_rollouts
        write_manifest(self.storage, self.prefix, manifest)
        self._manifest = manifest


def write_success_if_complete(
    storage: Storage,
    prefix: StorageURI,
    policy: FailurePolicySpec,
    num_shards: int,
    digest: str,
) -> bool:
    """Write `_SUCCESS` when every shard of this job finished and the failure policy allows it."""
    manifests = read_all_manifests(storage, prefix)
    complete = len(manifests) == num_shards and all(
        m.finished and m.job_digest == digest for m in manifests
    )
    if not complete:
        return False
    failed = failure_policy.verdict(policy, manifests, num_shards)
    if failed:
        log.error("all %d shards finished, but the job failed: %s", num_shards, failed)
        return False
    write_success(storage, prefix, manifests)
    log.info("all %d shards finished; wrote %s", num_shards, layout.SUCCESS)
    return True

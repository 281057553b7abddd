"""Streaming the rollouts of a RolloutJob output prefix, one task group at a time.

Only parts named in a shard manifest are read (a part not in the manifest does not exist). All
repeats of a task live in one shard (DESIGN section 6), so groups are formed per shard: a group
is released as soon as its rollouts plus failures reach the job's `numRepeats`, and the rest are
released at the end of the shard. Memory is therefore bounded by the groups open at once inside
one shard — with the generator's sliding window that is about `concurrency` tasks — plus one
decompression chunk, never by the dataset. (Worst case, parts ordered repeat-major, it is one
shard.) Shards whose manifest carries a digest other than `_job.json`'s are skipped and counted.
"""

from __future__ import annotations

import io
import json
import logging
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import zstandard

from gym_operator import errors
from gym_operator.data import rows
from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    PartEntry,
    ShardManifest,
    read_all_manifests,
    read_job_record,
    read_success,
)
from gym_operator.storage.store import Storage, iter_lines
from gym_operator.storage.uri import StorageURI, parse_uri

log = logging.getLogger(__name__)

JSON_COLUMNS_KEY = b"gymops.json_columns"
PARQUET_BATCH_ROWS = 4096


@dataclass
class TaskGroup:
    """The verified-or-not rollouts of one task in one source, plus its failure count."""

    source: int
    shard: int
    task_index: int
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0


@dataclass
class SourceInfo:
    """What was found at one source prefix."""

    uri: str
    digest: str | None
    num_repeats: int | None
    pass_threshold: float
    complete: bool
    shards: int = 0
    skipped_shards: list[int] = field(default_factory=list)
    input_errors: int = 0
    verifier: dict[str, Any] = field(default_factory=dict)
    reward: dict[str, Any] = field(default_factory=dict)


class SourceError(errors.GymopsError, ValueError):
    """A source prefix that cannot be read at all (no manifests)."""


@dataclass
class ReadCounts:
    """Rollouts that never reach a group: counted by reason."""

    dropped: Counter[str] = field(default_factory=Counter)
    read: int = 0


def _decoded_lines(storage: Storage, uri: StorageURI) -> Iterator[bytes]:
    """The lines of a JSONL part, decompressed while streaming."""
    chunks = storage.iter_chunks(uri)
    if uri.key.endswith(".zst"):
        decomp = zstandard.ZstdDecompressor().decompressobj()
        chunks = (decomp.decompress(c) for c in chunks)
    elif uri.key.endswith(".gz"):
        gz = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        chunks = _gunzip(gz, chunks)
    yield from iter_lines(chunks)


def _gunzip(gz: Any, chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield gz.decompress(chunk)
        while gz.unused_data:  # concatenated gzip members
            rest = gz.unused_data
            gz = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            yield gz.decompress(rest)
    yield gz.flush()


def _parquet_rows(storage: Storage, uri: StorageURI) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    source = io.BytesIO(storage.read_bytes(uri))
    parquet = pq.ParquetFile(source)
    meta = parquet.schema_arrow.metadata or {}
    json_columns = set(json.loads(meta.get(JSON_COLUMNS_KEY, b"[]")))
    json_columns |= {"response", "responses_create_params", "reward_components"}
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            for col in json_columns:
                if isinstance(row.get(col), str):
                    row[col] = json.loads(row[col])
            yield row


def iter_file_rows(
    storage: Storage, uri: StorageURI, counts: ReadCounts
) -> Iterator[dict[str, Any]]:
    """Every row of a part file; a line that is not a JSON object is counted and skipped."""
    if uri.key.endswith(".parquet"):
        yield from _parquet_rows(storage, uri)
        return
    for number, line in enumerate(_decoded_lines(storage, uri), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            row = exc
        if not isinstance(row, dict):
            counts.dropped["bad_row"] += 1
            log.warning("%s line %d: not a JSON object; skipped", uri, number)
            continue
        yield row


def _job_settings(record_spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    reward = record_spec.get("reward") or {}
    threshold = reward.get("passThreshold", reward.get("pass_threshold", 1.0))
    return float(threshold), dict(record_spec.get("verifier") or {})


def open_source(storage: Storage, uri: str, index: int) -> tuple[SourceInfo, list[ShardManifest]]:
    """The source's job record and the manifests of shards that belong to it."""
    prefix = parse_uri(uri)
    record = read_job_record(storage, prefix)
    manifests = read_all_manifests(storage, prefix)
    if not manifests:
        raise SourceError(
            f"sources[{index}] {uri}: no shard manifests (is it a RolloutJob output?)"
        )
    threshold, verifier = _job_settings(record.spec if record else {})
    digest = record.digest if record else manifests[0].job_digest
    info = SourceInfo(
        uri=str(prefix),
        digest=digest,
        num_repeats=record.num_repeats if record else manifests[0].num_repeats,
        pass_threshold=threshold,
        complete=read_success(storage, prefix) is not None,
        verifier=verifier,
        reward=dict((record.spec if record else {}).get("reward") or {}),
    )
    info.skipped_shards = [m.shard for m in manifests if m.job_digest != digest]
    info.shards = len(manifests) - len(info.skipped_shards)
    info.input_errors = sum(m.input_errors for m in manifests if m.job_digest == digest)
    return info, manifests


class GroupReader:
    """Yields the task groups of every source, shard by shard, counting what it cannot use."""

    def __init__(self, storage: Storage, uris: list[str]) -> None:
        self.storage = storage
        self.uris = uris
        self.counts = ReadCounts()
        self.sources: list[SourceInfo] = []
        self.max_open_groups = 0

    def groups(self) -> Iterator[TaskGroup]:
        """Every task group of every source, in source, shard and completion order."""
        for index, uri in enumerate(self.uris):
            info, manifests = open_source(self.storage, uri, index)
            self.sources.append(info)
            if not info.complete:
                log.warning("%s: no _SUCCESS yet; reading the parts committed so far", info.uri)
            prefix = parse_uri(uri)
            for manifest in manifests:
                if manifest.shard in info.skipped_shards:
                    self._count_mismatch(manifest, info)
                    continue
                yield from self._shard_groups(prefix, index, manifest)

    def _count_mismatch(self, manifest: ShardManifest, info: SourceInfo) -> None:
        n = sum(p.rollouts + p.failures for p in manifest.parts)
        self.counts.read += n
        self.counts.dropped["digest_mismatch"] += n
        log.warning(
            "%s shard %d: spec digest %s differs from the job's %s; %d rollouts not used",
            info.uri,
            manifest.shard,
            manifest.job_digest[:12],
            (info.digest or "")[:12],
            n,
        )

    def _shard_groups(
        self, prefix: StorageURI, source: int, manifest: ShardManifest
    ) -> Iterator[TaskGroup]:
        repeats = manifest.num_repeats
        open_groups: dict[int, TaskGroup] = {}
        directory = layout.shard_dir(prefix, manifest.shard)
        for entry in manifest.parts:
            for kind, row in self._part_rows(directory, entry):
                ident = rows.identity_of(row)
                self.counts.read += 1
                if ident is None:
                    self.counts.dropped["failed" if kind == "failure" else "no_identity"] += 1
                    continue
                group = open_groups.get(ident[0])
                if group is None:
                    group = open_groups[ident[0]] = TaskGroup(source, manifest.shard, ident[0])
                    self.max_open_groups = max(self.max_open_groups, len(open_groups))
                if kind == "rollout":
                    group.rollouts.append(row)
                else:
                    group.failures += 1
                if len(group.rollouts) + group.failures >= repeats:
                    yield open_groups.pop(ident[0])
        yield from sorted(open_groups.values(), key=lambda g: g.task_index)

    def _part_rows(
        self, directory: StorageURI, entry: PartEntry
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if entry.failures_file:
            for row in iter_file_rows(
                self.storage, directory.join(entry.failures_file), self.counts
            ):
                yield "failure", row
        if entry.rollouts_file:
            for row in iter_file_rows(
                self.storage, directory.join(entry.rollouts_file), self.counts
            ):
                yield "rollout", row

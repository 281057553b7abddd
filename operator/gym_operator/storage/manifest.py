"""Shard manifests, the job record and the success marker: the exactly-once protocol.

A shard commits a part by uploading its files, then rewriting its manifest (`commit_part`). A file
not named in the manifest does not exist, so a worker killed at any instant loses nothing that was
committed and duplicates nothing: on restart it reads the manifest and redoes only the slots that
are not in `done`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, Field

from gym_operator import redaction
from gym_operator.storage import layout
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.uri import StorageURI


class PartEntry(BaseModel):
    """One committed part: its rollout file and the failure/error files of the same commit."""

    seq: int
    rollouts_file: str | None = None
    failures_file: str | None = None
    errors_file: str | None = None
    rollouts: int = 0
    failures: int = 0
    errors: int = 0


class ShardManifest(BaseModel):
    """What one shard has committed."""

    version: int = 1
    shard: int
    num_shards: int
    job_digest: str
    num_repeats: int = Field(ge=1)
    parts: list[PartEntry] = Field(default_factory=list)
    done: list[tuple[int, int]] = Field(
        default_factory=list, description="Slots committed (rollout, failure or bad input)."
    )
    completed: int = 0
    failed: int = 0
    failure_classes: dict[str, int] = Field(
        default_factory=dict, description="Committed failure rows by failure class."
    )
    failure_examples: dict[str, str] = Field(
        default_factory=dict, description="The first message seen of each failure class."
    )
    runs: dict[int, int] = Field(
        default_factory=dict,
        description="Failed runs so far of the slots sampled again on resume (slot -> runs).",
    )
    input_errors: int = 0
    truncated: int = 0
    passed: int = 0
    reward_sum: float = 0.0
    expected_rollouts: int | None = None
    finished: bool = False
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    def done_slots(self) -> SlotSet:
        """The committed slots as a SlotSet."""
        return SlotSet(self.done)

    def next_seq(self) -> int:
        """Sequence number of the next part."""
        return self.parts[-1].seq + 1 if self.parts else 0


class JobRecord(BaseModel):
    """`_job.json`: identifies the job that owns an output prefix."""

    digest: str
    num_shards: int
    num_repeats: int
    spec: dict[str, Any] = Field(default_factory=dict)
    input: dict[str, Any] | None = Field(
        default=None,
        description="Identity of the input object at the start (size, S3 ETag or file mtime_ns).",
    )
    created_at: float = Field(default_factory=time.time)


class SuccessMarker(BaseModel):
    """`_SUCCESS`: written last, once every shard finished."""

    digest: str
    manifests: list[str]
    completed: int
    failed: int
    input_errors: int
    finished_at: float = Field(default_factory=time.time)


def read_manifest(storage: Storage, prefix: StorageURI, shard: int) -> ShardManifest | None:
    """The shard's manifest, or None when the shard has not committed anything."""
    try:
        raw = storage.read_bytes(layout.manifest_uri(prefix, shard))
    except ObjectNotFound:
        return None
    return ShardManifest.model_validate_json(raw)


def write_manifest(storage: Storage, prefix: StorageURI, manifest: ShardManifest) -> None:
    """Write the manifest atomically (the commit point)."""
    manifest.updated_at = time.time()
    storage.write_bytes(
        layout.manifest_uri(prefix, manifest.shard),
        redaction.redact_text(manifest.model_dump_json()).encode(),
    )


def commit_part(
    storage: Storage,
    prefix: StorageURI,
    manifest: ShardManifest,
    files: dict[str, bytes],
    entry: PartEntry,
    slots: SlotSet,
) -> ShardManifest:
    """Upload the part's files, then record them and their slots in a new manifest.

    `manifest` is not modified; the returned copy is what was committed. The caller adds the
    counters it tracks (completed, failed, rewards) to `entry` and the returned manifest.
    """
    directory = layout.shard_dir(prefix, manifest.shard)
    for name, data in files.items():
        storage.write_bytes(directory.join(name), data)
    done = manifest.done_slots()
    done.update(slots)
    committed = manifest.model_copy(deep=True)
    committed.parts.append(entry)
    committed.done = done.intervals()
    return committed


def read_all_manifests(storage: Storage, prefix: StorageURI) -> list[ShardManifest]:
    """Every shard manifest under the prefix, by shard."""
    found = [
        ShardManifest.model_validate_json(storage.read_bytes(obj))
        for obj in storage.list(prefix)
        if obj.name == layout.MANIFEST
    ]
    return sorted(found, key=lambda m: m.shard)


def read_job_record(storage: Storage, prefix: StorageURI) -> JobRecord | None:
    """`_job.json`, or None for a fresh prefix."""
    try:
        return JobRecord.model_validate_json(storage.read_bytes(prefix.join(layout.JOB_RECORD)))
    except ObjectNotFound:
        return None


def write_job_record(storage: Storage, prefix: StorageURI, record: JobRecord) -> None:
    """Write `_job.json` (registered secrets redacted)."""
    text = redaction.redact_text(record.model_dump_json(indent=2))
    storage.write_bytes(prefix.join(layout.JOB_RECORD), text.encode())


def read_success(storage: Storage, prefix: StorageURI) -> SuccessMarker | None:
    """`_SUCCESS`, or None while the job has not finished."""
    try:
        return SuccessMarker.model_validate_json(storage.read_bytes(prefix.join(layout.SUCCESS)))
    except ObjectNotFound:
        return None


def write_success(storage: Storage, prefix: StorageURI, manifests: list[ShardManifest]) -> None:
    """Write `_SUCCESS` listing every shard manifest (call only when all shards finished)."""
    marker = SuccessMarker(
        digest=manifests[0].job_digest if manifests else "",
        manifests=[str(layout.manifest_uri(prefix, m.shard)) for m in manifests],
        completed=sum(m.completed for m in manifests),
        failed=sum(m.failed for m in manifests),
        input_errors=sum(m.input_errors for m in manifests),
    )
    storage.write_bytes(
        prefix.join(layout.SUCCESS), json.dumps(marker.model_dump(), indent=2).encode()
    )

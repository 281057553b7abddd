"""Shard manifests, the job record and the success marker: the exactly-once protocol.

A shard commits a part by uploading its files, then rewriting its manifest (`commit_part`). A file
not named in the manifest does not exist, so a worker killed at any instant loses nothing that was
committed and duplicates nothing: on restart it reads the manifest and redoes only the slots that
are not in `done`.

The manifest stays small however long the shard runs: every SEGMENT_PARTS part entries are sealed
into a segment file (written once, under a name never used again, before the manifest that names
it), and the manifest keeps only the segment names and the entries not sealed yet. A commit thus
writes, encodes and redacts O(new parts) bytes; readers get every entry (`read_manifest`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from pydantic import BaseModel, Field

from gym_operator import redaction
from gym_operator.storage import layout
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.tally import Tally
from gym_operator.storage.uri import StorageURI

SEGMENT_PARTS = 64
"""Part entries per sealed segment: the manifest holds fewer unsealed ones than this."""
SEGMENT_CACHE = 4096
"""Sealed segments kept parsed per process (a segment's name is never reused, so never stale)."""


class PartEntry(BaseModel):
    """One committed part: its rollout file and the failure/error files of the same commit."""

    seq: int
    rollouts_file: str | None = None
    failures_file: str | None = None
    errors_file: str | None = None
    rollouts: int = 0
    failures: int = 0
    errors: int = 0


class SegmentRef(BaseModel):
    """A sealed segment: a file in the shard directory holding `count` part entries."""

    name: str
    first_seq: int
    count: int


class ShardManifest(Tally):
    """What one shard has committed (its Tally: the committed rows' counts)."""

    version: int = 2
    shard: int
    num_shards: int
    job_digest: str
    num_repeats: int = Field(ge=1)
    parts: list[PartEntry] = Field(
        default_factory=list,
        description="Committed parts, oldest first (stored: only those not sealed in a segment).",
    )
    segments: list[SegmentRef] = Field(
        default_factory=list, description="Sealed part entries, oldest first."
    )
    done: list[tuple[int, int]] = Field(
        default_factory=list, description="Slots committed (rollout, failure or bad input)."
    )
    failure_examples: dict[str, str] = Field(
        default_factory=dict, description="The first message seen of each failure class."
    )
    runs: dict[int, int] = Field(
        default_factory=dict,
        description="Failed runs so far of the slots sampled again on resume (slot -> runs).",
    )
    expected_rollouts: int | None = None
    concurrency_limit: int | None = Field(
        default=None,
        description="Model requests the shard could have in flight at its last commit (its "
        "window's limit: the fixed setting, cut on 429s, or what `auto` found).",
    )
    finished: bool = False
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    def done_slots(self) -> SlotSet:
        """The committed slots as a SlotSet."""
        return SlotSet(self.done)

    def next_seq(self) -> int:
        """Sequence number of the next part."""
        return self.parts[-1].seq + 1 if self.parts else 0

    def sealed(self) -> int:
        """How many of `parts` (the first ones) are in segments."""
        return sum(ref.count for ref in self.segments)

    def note_failure_example(self, failure_class: str, message: str) -> None:
        """Keep the first message of a failure class (redacted: it may echo a secret)."""
        if failure_class not in self.failure_examples:
            self.failure_examples[failure_class] = redaction.redact_text(message)


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


_segments: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
_segments_lock = threading.Lock()


def read_manifest(storage: Storage, prefix: StorageURI, shard: int) -> ShardManifest | None:
    """The shard's manifest with every part entry, or None when the shard committed nothing."""
    try:
        raw = storage.read_bytes(layout.manifest_uri(prefix, shard))
    except ObjectNotFound:
        return None
    return _with_segments(storage, prefix, ShardManifest.model_validate_json(raw))


def _with_segments(storage: Storage, prefix: StorageURI, manifest: ShardManifest) -> ShardManifest:
    """The manifest's sealed entries read back in front of its unsealed ones."""
    if not manifest.segments:
        return manifest
    sealed: list[PartEntry] = []
    for ref in manifest.segments:
        sealed.extend(PartEntry.model_validate(e) for e in _segment(storage, prefix, manifest, ref))
    manifest.parts = sealed + manifest.parts
    return manifest


def _segment(
    storage: Storage, prefix: StorageURI, manifest: ShardManifest, ref: SegmentRef
) -> list[dict[str, Any]]:
    location = layout.shard_dir(prefix, manifest.shard).join(ref.name)
    uri = str(location)
    with _segments_lock:
        cached = _segments.get(uri)
    if cached is not None:
        return cached
    entries = json.loads(storage.read_bytes(location))
    if not isinstance(entries, list) or len(entries) != ref.count:
        raise ValueError(f"{uri}: expected {ref.count} part entries (a damaged segment)")
    with _segments_lock:
        _segments[uri] = entries
        while len(_segments) > SEGMENT_CACHE:
            _segments.popitem(last=False)
    return entries


def write_manifest(
    storage: Storage, prefix: StorageURI, manifest: ShardManifest, *, reseal: bool = False
) -> None:
    """Write the manifest atomically (the commit point), first sealing full segments of its
    unsealed entries. `reseal`: the sealed entries changed (requeue), seal them all afresh."""
    manifest.updated_at = time.time()
    if reseal:
        manifest.segments = []
    _seal(storage, prefix, manifest)
    body = manifest.model_dump(mode="json", exclude={"parts"})
    body["parts"] = [p.model_dump(exclude_none=True) for p in manifest.parts[manifest.sealed() :]]
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    storage.write_bytes(
        layout.manifest_uri(prefix, manifest.shard), redaction.redact_text(text).encode()
    )


def _seal(storage: Storage, prefix: StorageURI, manifest: ShardManifest) -> None:
    """Write each full SEGMENT_PARTS run of unsealed entries to a new segment file."""
    start = manifest.sealed()
    while len(manifest.parts) - start >= SEGMENT_PARTS:
        chunk = manifest.parts[start : start + SEGMENT_PARTS]
        name = layout.segment_name(chunk[0].seq, uuid.uuid4().hex[:12])
        text = json.dumps([p.model_dump(exclude_none=True) for p in chunk], separators=(",", ":"))
        storage.write_bytes(
            layout.shard_dir(prefix, manifest.shard).join(name),
            redaction.redact_text(text).encode(),
        )
        manifest.segments.append(SegmentRef(name=name, first_seq=chunk[0].seq, count=len(chunk)))
        start += len(chunk)


def commit_part(
    storage: Storage,
    prefix: StorageURI,
    manifest: ShardManifest,
    files: dict[str, bytes],
    entry: PartEntry,
    slots: SlotSet,
) -> ShardManifest:
    """Upload the part's files, then record them and their slots in a new manifest (unwritten).

    `manifest` is not modified; the returned copy is what to commit (`write_manifest`) once the
    caller has added its counts (`Tally.add`). The copy shares the part entries (never modified
    once committed), so this costs O(new parts), not O(parts so far).
    """
    directory = layout.shard_dir(prefix, manifest.shard)
    for name, data in files.items():
        storage.write_bytes(directory.join(name), data)
    done = manifest.done_slots()
    done.update(slots)
    return manifest.model_copy(
        update={
            "parts": [*manifest.parts, entry],
            "segments": list(manifest.segments),
            "done": done.intervals(),
            "failure_classes": dict(manifest.failure_classes),
            "failure_examples": dict(manifest.failure_examples),
            "runs": dict(manifest.runs),
        }
    )


def read_all_manifests(storage: Storage, prefix: StorageURI) -> list[ShardManifest]:
    """Every shard manifest under the prefix, by shard."""
    found = [
        _with_segments(storage, prefix, ShardManifest.model_validate_json(storage.read_bytes(obj)))
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

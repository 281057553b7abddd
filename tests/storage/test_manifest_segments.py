"""A shard's manifest stays small however many parts it commits; readers still see every part."""

from __future__ import annotations

import json
from pathlib import Path

from gym_operator import redaction
from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    SEGMENT_PARTS,
    PartEntry,
    ShardManifest,
    commit_part,
    read_all_manifests,
    read_manifest,
    write_manifest,
)
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI, parse_uri


def commit(storage: Storage, prefix: StorageURI, manifest: ShardManifest) -> ShardManifest:
    """Commit one part of one rollout (slot = its seq), as a shard does."""
    seq = manifest.next_seq()
    name = layout.part_name(seq, ".jsonl")
    entry = PartEntry(seq=seq, rollouts_file=name, rollouts=1)
    slots = SlotSet()
    slots.add(seq)
    files = {name: json.dumps({"_ng_task_index": seq, "_ng_rollout_index": 0}).encode()}
    committed = commit_part(storage, prefix, manifest, files, entry, slots)
    committed.count_rollout(1.0, True, False)
    write_manifest(storage, prefix, committed)
    return committed


def fresh() -> ShardManifest:
    return ShardManifest(shard=0, num_shards=1, job_digest="d", num_repeats=1)


def manifest_bytes(storage: Storage, prefix: StorageURI) -> int:
    return len(storage.read_bytes(layout.manifest_uri(prefix, 0)))


def test_the_manifest_does_not_grow_with_the_parts_and_reads_back_whole(tmp_path: Path) -> None:
    storage, prefix = Storage(), parse_uri(str(tmp_path / "out"))
    manifest = fresh()
    sizes = []
    for _ in range(5 * SEGMENT_PARTS + 3):
        manifest = commit(storage, prefix, manifest)
        sizes.append(manifest_bytes(storage, prefix))
    # one entry per part until the first seal; after it, only the unsealed tail is rewritten
    unsealed_max = sizes[SEGMENT_PARTS - 2]
    assert max(sizes[SEGMENT_PARTS:]) < unsealed_max + 1000
    assert sizes[-1] < unsealed_max / 4

    back = read_manifest(storage, prefix, 0)
    assert back is not None
    assert [p.seq for p in back.parts] == list(range(5 * SEGMENT_PARTS + 3))
    assert [p.rollouts_file for p in back.parts][:2] == ["part-00000.jsonl", "part-00001.jsonl"]
    assert len(back.segments) == 5 and back.completed == 5 * SEGMENT_PARTS + 3
    assert back.done_slots().intervals() == [(0, 5 * SEGMENT_PARTS + 3)]
    assert [p.seq for p in read_all_manifests(storage, prefix)[0].parts] == [
        p.seq for p in back.parts
    ]
    # a commit from the manifest read back goes on where it stopped
    again = commit(storage, prefix, back)
    assert [p.seq for p in read_manifest(storage, prefix, 0).parts][-2:] == [
        5 * SEGMENT_PARTS + 2,
        5 * SEGMENT_PARTS + 3,
    ]
    assert again.completed == 5 * SEGMENT_PARTS + 4


def test_a_segment_written_without_its_manifest_does_not_exist(tmp_path: Path) -> None:
    """A kill between the segment upload and the manifest write leaves the old commit whole."""
    storage, prefix = Storage(), parse_uri(str(tmp_path / "out"))
    manifest = fresh()
    for _ in range(SEGMENT_PARTS - 1):
        manifest = commit(storage, prefix, manifest)
    orphan = layout.shard_dir(prefix, 0).join(layout.segment_name(0, "orphan"))
    storage.write_bytes(orphan, b"[]")
    back = read_manifest(storage, prefix, 0)
    assert back is not None and not back.segments and len(back.parts) == SEGMENT_PARTS - 1
    sealed = commit(storage, prefix, back)
    assert [ref.name for ref in sealed.segments] != ["_parts-00000-orphan.json"]
    assert len(read_manifest(storage, prefix, 0).parts) == SEGMENT_PARTS


def test_resealing_records_changed_entries_under_new_names(tmp_path: Path) -> None:
    """Requeue rewrites a sealed entry's failure file: the segments are written afresh."""
    storage, prefix = Storage(), parse_uri(str(tmp_path / "out"))
    manifest = fresh()
    for _ in range(SEGMENT_PARTS + 5):
        manifest = commit(storage, prefix, manifest)
    changed = read_manifest(storage, prefix, 0)
    assert changed is not None
    old_names = [ref.name for ref in changed.segments]
    changed.parts[3].failures_file = "failures-00003.r1.jsonl"
    write_manifest(storage, prefix, changed, reseal=True)
    back = read_manifest(storage, prefix, 0)
    assert back is not None and back.parts[3].failures_file == "failures-00003.r1.jsonl"
    assert [ref.name for ref in back.segments] != old_names
    assert len(back.parts) == SEGMENT_PARTS + 5


def test_failure_examples_enter_the_manifest_redacted(tmp_path: Path) -> None:
    storage, prefix = Storage(), parse_uri(str(tmp_path / "out"))
    secret = "sk-manifest-secret-0123456789"
    redaction.register(secret)
    manifest = fresh()
    manifest.note_failure_example("http_4xx", f"401: bad key {secret}")
    manifest.note_failure_example("http_4xx", "a second message is not kept")
    write_manifest(storage, prefix, manifest)
    text = storage.read_bytes(layout.manifest_uri(prefix, 0)).decode()
    assert secret not in text and secret[:8] not in text
    back = read_manifest(storage, prefix, 0)
    assert back is not None and back.failure_examples == {"http_4xx": "401: bad key [redacted]"}

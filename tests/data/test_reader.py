"""Reading rollout parts: only committed parts, every encoding, digest checks, bounded groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_operator.data.reader import GroupReader, SourceError
from gym_operator.data.synthetic import commit_rows, finish_job, rollout_row, start_job
from gym_operator.storage.manifest import PartEntry, read_manifest, write_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri


def groups_of(storage: Storage, *uris: str) -> tuple[GroupReader, dict[int, list[int]]]:
    reader = GroupReader(storage, list(uris))
    found = {
        g.task_index: sorted(r["_ng_rollout_index"] for r in g.rollouts) for g in reader.groups()
    }
    return reader, found


@pytest.mark.parametrize("suffix", [".jsonl.zst", ".jsonl.gz", ".jsonl", ".parquet"])
def test_every_part_encoding_reads_back(tmp_path: Path, storage: Storage, suffix: str) -> None:
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=1, num_repeats=2)
    rows = [
        rollout_row(t, r, f"t{t}r{r}", 1.0, meta={"k": [1, 2]}) for t in range(3) for r in range(2)
    ]
    manifests[0] = commit_rows(storage, uri, manifests[0], rows[:3], suffix=suffix)
    manifests[0] = commit_rows(storage, uri, manifests[0], rows[3:], suffix=suffix)
    finish_job(storage, uri, manifests)
    reader = GroupReader(storage, [uri])
    groups = list(reader.groups())
    assert [(g.task_index, len(g.rollouts)) for g in groups] == [(0, 2), (1, 2), (2, 2)]
    first = groups[0].rollouts[0]
    assert first["meta"] == {"k": [1, 2]}
    assert first["response"]["output"][0]["content"][0]["text"] == "t0r0"
    assert reader.counts.read == 6 and not reader.counts.dropped


def test_parts_not_in_the_manifest_do_not_exist(tmp_path: Path, storage: Storage) -> None:
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=1, num_repeats=1)
    manifests[0] = commit_rows(storage, uri, manifests[0], [rollout_row(0, 0, "a", 1.0)])
    finish_job(storage, uri, manifests)
    # an uploaded part whose manifest commit never happened (pod killed in between)
    orphan = tmp_path / "rj" / "shard-00000" / "part-00001.jsonl"
    orphan.write_text('{"_ng_task_index": 1, "_ng_rollout_index": 0, "reward": 1.0}\n')
    reader, found = groups_of(storage, uri)
    assert found == {0: [0]} and reader.counts.read == 1


def test_shards_of_another_spec_digest_are_counted_not_mixed(
    tmp_path: Path, storage: Storage
) -> None:
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=2, num_repeats=1, digest="new")
    manifests[1] = manifests[1].model_copy(update={"job_digest": "old"})
    manifests[0] = commit_rows(storage, uri, manifests[0], [rollout_row(0, 0, "a", 1.0)])
    manifests[1] = commit_rows(storage, uri, manifests[1], [rollout_row(1, 0, "b", 1.0)] * 3)
    reader, found = groups_of(storage, uri)
    assert found == {0: [0]}
    assert reader.counts.dropped == {"digest_mismatch": 3}
    assert reader.sources[0].skipped_shards == [1]
    assert reader.sources[0].complete is False  # no _SUCCESS yet


def test_a_bad_line_is_counted_and_the_rest_is_read(tmp_path: Path, storage: Storage) -> None:
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=1, num_repeats=1)
    manifests[0] = commit_rows(
        storage,
        uri,
        manifests[0],
        [rollout_row(0, 0, "a", 1.0), rollout_row(1, 0, "b", 1.0)],
        suffix=".jsonl",
    )
    part = tmp_path / "rj" / "shard-00000" / "part-00000.jsonl"
    lines = part.read_text().splitlines()
    part.write_text("\n".join([lines[0], "{not json", "[1, 2]", lines[1]]) + "\n")
    reader, found = groups_of(storage, uri)
    assert found == {0: [0], 1: [0]}
    assert reader.counts.dropped == {"bad_row": 2}


def test_groups_are_released_when_complete(tmp_path: Path, storage: Storage) -> None:
    """Parts interleave a window of 2 tasks: never more than 2 groups are held at once."""
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=1, num_repeats=2)
    for first in range(0, 10, 2):
        part = [rollout_row(t, r, "x", 1.0) for r in range(2) for t in (first, first + 1)]
        manifests[0] = commit_rows(storage, uri, manifests[0], part)
    reader, found = groups_of(storage, uri)
    assert sorted(found) == list(range(10)) and all(v == [0, 1] for v in found.values())
    assert reader.max_open_groups == 2


def test_failures_complete_a_group(tmp_path: Path, storage: Storage) -> None:
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=1, num_repeats=2)
    manifests[0] = commit_rows(
        storage,
        uri,
        manifests[0],
        [rollout_row(0, 0, "x", 1.0)],
        failures=[{"_ng_task_index": 0, "_ng_rollout_index": 1, "failure": {"class": "timeout"}}],
    )
    groups = list(GroupReader(storage, [uri]).groups())
    assert [(g.task_index, len(g.rollouts), g.failures) for g in groups] == [(0, 1, 1)]


def test_a_prefix_without_manifests_is_an_error_naming_it(tmp_path: Path, storage: Storage) -> None:
    with pytest.raises(SourceError, match=r"sources\[0\] .*/empty: no shard manifests"):
        list(GroupReader(storage, [f"file://{tmp_path}/empty"]).groups())


def test_reads_from_s3(s3_bucket: str) -> None:
    storage = Storage()
    uri = f"s3://{s3_bucket}/runs/rj"
    manifests = start_job(storage, uri, num_shards=2, num_repeats=2)
    for shard in range(2):
        rows = [rollout_row(t, r, "x", 0.5) for t in range(shard, 6, 2) for r in range(2)]
        manifests[shard] = commit_rows(storage, uri, manifests[shard], rows)
    finish_job(storage, uri, manifests)
    assert read_manifest(storage, parse_uri(uri), 1) is not None
    reader, found = groups_of(storage, uri)
    assert found == {t: [0, 1] for t in range(6)}
    assert reader.sources[0].complete is True


@pytest.mark.parametrize(
    ("fmt", "compression"), [("parquet", "none"), ("jsonl", "zstd"), ("jsonl", "gzip")]
)
def test_reads_parts_encoded_by_the_generator(
    tmp_path: Path, storage: Storage, fmt, compression
) -> None:
    """The rollout generator's own encoder (JSON columns in parquet metadata) reads back intact."""
    from gym_operator.rollout.parts import encode_part, part_suffix

    rows = [rollout_row(0, r, f"r{r}", 0.5, options={"a": [1, 2]}) for r in range(2)]
    rows[1]["reward_components"] = {"correct": 0.5}
    uri = f"file://{tmp_path}/rj"
    manifests = start_job(storage, uri, num_shards=1, num_repeats=2)
    suffix = part_suffix(fmt, compression)
    (tmp_path / "rj" / "shard-00000").mkdir(parents=True)
    (tmp_path / "rj" / "shard-00000" / f"part-00000{suffix}").write_bytes(
        encode_part(rows, fmt, compression)
    )
    manifest = manifests[0].model_copy(deep=True)
    manifest.parts.append(PartEntry(seq=0, rollouts_file=f"part-00000{suffix}", rollouts=2))
    write_manifest(storage, parse_uri(uri), manifest)
    [group] = GroupReader(storage, [uri]).groups()
    assert [r["options"] for r in group.rollouts] == [{"a": [1, 2]}] * 2
    assert group.rollouts[1]["reward_components"] == {"correct": 0.5}
    assert group.rollouts[0]["response"] == rows[0]["response"]

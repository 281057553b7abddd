"""S3 faults (drops, lost answers, 503 SlowDown, slow answers) never lose or half-commit a part."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from faultkit import (
    TinyVerifier,
    assert_exactly_once,
    gymops,
    job_body,
    proxied,
    read_output,
    serve,
    task_row,
    wait_or_dump,
    write_spec,
)

from gym_operator.api import parse_resource
from gym_operator.rollout.runner import run_job
from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    PartEntry,
    ShardManifest,
    commit_part,
    read_all_manifests,
    read_manifest,
    read_success,
    write_manifest,
)
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI, parse_uri
from gym_operator.testing.s3_fault_proxy import FaultPlan, S3FaultProxy
from gym_operator.testing.stub_model import StubModel, start

MIXED = FaultPlan(drop_before=0.08, drop_after=0.08, slowdown=0.12, delay=0.05, delay_seconds=0.05)
REPEATS = 2
TASKS = 40


def rows_of(slots: list[int]) -> bytes:
    """A part's content: one JSON row per slot (task = slot // REPEATS)."""
    return b"".join(
        json.dumps({"_ng_task_index": s // REPEATS, "_ng_rollout_index": s % REPEATS}).encode()
        + b"\n"
        for s in slots
    )


def committed_rows(storage: Storage, prefix: StorageURI) -> list[tuple[int, int]]:
    """What a reader sees: rows of the parts the manifests name, and nothing else."""
    found = []
    for manifest in read_all_manifests(storage, prefix):
        directory = layout.shard_dir(prefix, manifest.shard)
        for part in manifest.parts:
            assert part.rollouts_file is not None
            data = storage.read_bytes(directory.join(part.rollouts_file))
            rows = [json.loads(line) for line in data.splitlines()]
            assert len(rows) == part.rollouts, f"part {part.seq} holds {len(rows)} rows"
            found += [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows]
    return found


def assert_consistent(storage: Storage, prefix: StorageURI) -> ShardManifest | None:
    """The committed state is whole: every named part exists and holds exactly the done slots."""
    manifest = read_manifest(storage, prefix, 0)
    rows = committed_rows(storage, prefix)
    assert len(rows) == len(set(rows)), "a slot is committed twice"
    done = SlotSet()
    for task, rollout in rows:
        done.add(task * REPEATS + rollout)
    assert done == (manifest.done_slots() if manifest else SlotSet())
    assert (manifest.completed if manifest else 0) == len(rows)
    return manifest


def commit(
    storage: Storage, prefix: StorageURI, manifest: ShardManifest, slots: list[int]
) -> ShardManifest:
    """One commit as a worker does it: upload the part, then rewrite the manifest."""
    seq = manifest.next_seq()
    name = layout.part_name(seq, layout.PART_SUFFIXES["none"])
    entry = PartEntry(seq=seq, rollouts_file=name, rollouts=len(slots))
    done = SlotSet()
    for s in slots:
        done.add(s)
    committed = commit_part(storage, prefix, manifest, {name: rows_of(slots)}, entry, done)
    committed.completed += len(slots)
    write_manifest(storage, prefix, committed)
    return committed


def fresh_manifest() -> ShardManifest:
    return ShardManifest(shard=0, num_shards=1, job_digest="d1", num_repeats=REPEATS)


def test_uploads_are_retried_through_every_fault(
    s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    s3_proxy.plan = MIXED
    storage = proxied(s3_proxy)
    prefix = parse_uri(f"s3://{s3_bucket}/retries/")
    payloads = {f"obj-{i:03d}": f"payload {i}\n".encode() * (i + 1) for i in range(40)}
    for name, data in payloads.items():
        storage.write_bytes(prefix.join(name), data)
    storage.close()

    for name, data in payloads.items():
        assert clean_storage.read_bytes(prefix.join(name)) == data
    assert len(clean_storage.list(prefix)) == 40
    stats = s3_proxy.stats
    for fault in ("drop_before", "drop_after", "slowdown", "delay"):
        assert stats[fault] > 0, f"the plan never injected {fault}: {stats}"
    retried = stats["drop_before"] + stats["drop_after"] + stats["slowdown"]
    assert stats["requests"] == 40 + retried
    assert stats["forwarded"] == 40 + stats["drop_after"]
    assert max(s3_proxy.attempts.values()) <= 10


def test_slow_answers_past_the_read_timeout_are_retried(
    s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    # an answer takes milliseconds (seconds on a busy machine); a delayed one twice the timeout
    s3_proxy.plan = FaultPlan(delay=0.3, delay_seconds=6.0, methods=frozenset({"PUT"}))
    storage = proxied(s3_proxy, read_timeout=3.0)
    prefix = parse_uri(f"s3://{s3_bucket}/slow/")
    for i in range(12):
        storage.write_bytes(prefix.join(f"o{i}"), b"x" * i)
    storage.close()
    assert s3_proxy.stats["delay"] > 0
    assert [clean_storage.read_bytes(prefix.join(f"o{i}")) for i in range(12)] == [
        b"x" * i for i in range(12)
    ]
    puts = [n for (m, _), n in s3_proxy.attempts.items() if m == "PUT"]
    assert sum(puts) == 12 + s3_proxy.stats["delay"]


def test_commit_never_half_commits_and_resume_completes(
    s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    """Two attempts per request and a 45% fault rate: many commits fail midway.

    After every failure the committed state (manifest + the parts it names) is whole; a resumed
    worker redoes exactly the missing slots; the final output has every slot exactly once.
    """
    prefix = parse_uri(f"s3://{s3_bucket}/commits/")
    s3_proxy.plan = FaultPlan(drop_before=0.15, drop_after=0.15, slowdown=0.15)
    storage = proxied(s3_proxy, max_attempts=2)
    all_slots = list(range(TASKS * REPEATS))
    failures = uploaded_but_uncommitted = 0
    manifest = fresh_manifest()
    for first in range(0, len(all_slots), 4):
        attempted = layout.part_name(manifest.next_seq(), layout.PART_SUFFIXES["none"])
        try:
            manifest = commit(storage, prefix, manifest, all_slots[first : first + 4])
        except Exception:
            failures += 1
            # What a restarted worker does: trust only what storage says is committed.
            manifest = read_manifest(clean_storage, prefix, 0) or fresh_manifest()
            named = {p.rollouts_file for p in manifest.parts}
            part_uri = layout.shard_dir(prefix, 0).join(attempted)
            if clean_storage.exists(part_uri) and attempted not in named:
                uploaded_but_uncommitted += 1
        assert_consistent(clean_storage, prefix)
    storage.close()
    assert failures > 0, "the plan never made a commit fail"
    assert uploaded_but_uncommitted > 0, "no part was uploaded whose manifest write then failed"

    committed_before = assert_consistent(clean_storage, prefix)
    assert committed_before is not None and len(committed_before.done_slots()) < len(all_slots)

    s3_proxy.plan = FaultPlan()
    storage = proxied(s3_proxy)
    resumed = read_manifest(storage, prefix, 0)
    assert resumed is not None
    missing = [s for s in all_slots if s not in resumed.done_slots()]
    for first in range(0, len(missing), 4):
        resumed = commit(storage, prefix, resumed, missing[first : first + 4])
    storage.close()

    final = assert_consistent(clean_storage, prefix)
    assert final is not None and final.completed == TASKS * REPEATS
    rows = committed_rows(clean_storage, prefix)
    assert sorted(rows) == [(t, r) for t in range(TASKS) for r in range(REPEATS)]


@pytest.mark.parametrize("gate", ["part", "manifest"])
def test_upload_cut_at_the_gate_leaves_the_old_commit(
    gate: str, s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    """A worker whose part (or manifest) upload never answers leaves the previous commit intact."""
    prefix = parse_uri(f"s3://{s3_bucket}/gate-{gate}/")
    storage = proxied(s3_proxy, max_attempts=1, read_timeout=3.0)
    first = commit(storage, prefix, fresh_manifest(), [0, 1, 2, 3])
    pattern = r"/part-00001" if gate == "part" else r"/_manifest\.json$"
    hold = s3_proxy.hold("PUT", pattern)
    with pytest.raises(Exception, match="timeout|Read timed out"):
        commit(storage, prefix, first, [4, 5, 6, 7])
    assert hold.wait_held(0)
    storage.close()
    seen = assert_consistent(clean_storage, prefix)
    assert seen is not None and seen.completed == 4
    assert [p.seq for p in seen.parts] == [0]
    s3_proxy.release_all()


@pytest.mark.parametrize(
    ("fmt", "compression"), [("jsonl", "zstd"), ("jsonl", "gzip"), ("parquet", "none")]
)
async def test_generator_run_through_s3_faults_has_exact_counts(
    s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage, fmt: str, compression: str
) -> None:
    """A whole job (input, parts, manifests, _SUCCESS) through drops, lost answers and SlowDown."""
    tasks, repeats = 60, 2
    rows = [task_row(i, "#fault:400" if i % 20 == 7 else "") for i in range(tasks)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    clean_storage.write_bytes(parse_uri(f"s3://{s3_bucket}/in/tasks.jsonl"), data)
    output = f"s3://{s3_bucket}/out/"
    s3_proxy.plan = FaultPlan(
        drop_before=0.06, drop_after=0.06, slowdown=0.1, delay=0.05, delay_seconds=0.05
    )
    stub = StubModel()
    stub_runner, base_url = await start(stub)
    verifier = TinyVerifier()
    ver_runner, ver_url = await serve(verifier.app())
    body = job_body(
        f"s3://{s3_bucket}/in/tasks.jsonl",
        output,
        base_url,
        ver_url,
        sampling={"numRepeats": repeats, "concurrency": 8},
        output={"partRows": 8, "partSeconds": 0.2, "format": fmt, "compression": compression},
        s3={"endpointURL": s3_proxy.url, "region": "us-east-1"},
    )
    try:
        result = await run_job(parse_resource(body).spec, shards=[0])
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()

    assert result.success
    out = read_output(clean_storage, parse_uri(output))
    assert_exactly_once(out, tasks, repeats)
    refused = [t for t in range(tasks) if t % 20 == 7]
    assert sorted(out.failure_keys()) == [(t, r) for t in refused for r in range(repeats)]
    assert len(out.rollouts) == (tasks - len(refused)) * repeats
    assert stub.requests == tasks * repeats
    success = read_success(clean_storage, parse_uri(output))
    assert success is not None and (success.completed, success.failed) == (114, 6)
    for fault in ("drop_before", "drop_after", "slowdown", "delay"):
        assert s3_proxy.stats[fault] > 0, s3_proxy.stats
    assert len(out.manifests[0].parts) >= 3
    suffix = layout.PART_SUFFIXES["parquet" if fmt == "parquet" else compression]
    assert all(p.rollouts_file.endswith(suffix) for p in out.manifests[0].parts if p.rollouts_file)


def test_bodies_cut_off_mid_stream_are_resumed_never_short(
    s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    data = b"".join(b'{"i": %d}\n' % i for i in range(100_000))
    uri = parse_uri(f"s3://{s3_bucket}/big.jsonl")
    clean_storage.write_bytes(uri, data)
    s3_proxy.plan = FaultPlan(truncate=0.5, methods=frozenset({"GET"}))
    storage = proxied(s3_proxy)
    for _ in range(4):
        assert storage.read_bytes(uri) == data
        assert b"".join(storage.iter_chunks(uri, size=64 * 1024)) == data
    assert s3_proxy.stats["truncate"] > 0
    # Every cut was resumed by a ranged GET, never by reading the whole object again.
    assert s3_proxy.stats["requests"] == 8 + s3_proxy.stats["truncate"]

    s3_proxy.plan = FaultPlan(truncate=1.0, methods=frozenset({"GET"}))
    with pytest.raises(Exception, match="read, but total bytes expected|IncompleteRead"):
        storage.read_bytes(uri)
    storage.close()


async def test_generator_input_and_manifest_reads_cut_off_mid_stream(
    s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    tasks, repeats = 40, 2
    rows = [task_row(i, "x" * 20_000) for i in range(tasks)]  # ~800 KB of input
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    clean_storage.write_bytes(parse_uri(f"s3://{s3_bucket}/in/tasks.jsonl"), data)
    output = f"s3://{s3_bucket}/out/"
    s3_proxy.plan = FaultPlan(truncate=0.5, methods=frozenset({"GET"}))
    stub = StubModel()
    stub_runner, base_url = await start(stub)
    ver_runner, ver_url = await serve(TinyVerifier().app())
    body = job_body(
        f"s3://{s3_bucket}/in/tasks.jsonl",
        output,
        base_url,
        ver_url,
        sampling={"numRepeats": repeats, "concurrency": 8},
        s3={"endpointURL": s3_proxy.url, "region": "us-east-1"},
    )
    try:
        first = await run_job(parse_resource(body).spec, shards=[0])
        again = await run_job(parse_resource(body).spec, shards=[0])  # reads the manifest back
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()
    assert first.success and again.success
    out = read_output(clean_storage, parse_uri(output))
    assert_exactly_once(out, tasks, repeats)
    assert len(out.rollouts) == tasks * repeats and stub.requests == tasks * repeats
    assert s3_proxy.stats["truncate"] > 0


def test_denied_s3_access_fails_fast_with_a_clear_error(
    tmp_path: Path, s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    """Wrong credentials: exit 1 at once (the pod's retries apply), naming what was refused."""
    clean_storage.write_bytes(parse_uri(f"s3://{s3_bucket}/in/tasks.jsonl"), b"{}\n")
    s3_proxy.plan = FaultPlan(deny=1.0)
    body = job_body(
        f"s3://{s3_bucket}/in/tasks.jsonl",
        f"s3://{s3_bucket}/out/",
        "http://127.0.0.1:9/v1",
        "http://127.0.0.1:9",
        s3={"endpointURL": s3_proxy.url, "region": "us-east-1"},
    )
    log = tmp_path / "generate.log"
    started = time.monotonic()
    proc = gymops("generate", "--spec", write_spec(tmp_path / "job.yaml", body), log=log)
    assert wait_or_dump(proc, 60, log) == 1
    assert time.monotonic() - started < 20
    text = log.read_text()
    # A HEAD answer has no body, so botocore reports a denied HEAD as 403 Forbidden.
    assert ("AccessDenied" in text or "403" in text) and s3_bucket in text, text[-2000:]
    assert s3_proxy.stats["deny"] == s3_proxy.stats["requests"] <= 3
    assert clean_storage.list(parse_uri(f"s3://{s3_bucket}/out/")) == []

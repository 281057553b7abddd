"""SIGKILL `gymops generate` ten times (during model calls, during a part upload, between the part
upload and the manifest write, at random instants) with S3 behind the fault proxy; the final output
has every (task, repeat) exactly once and the failure files hold no phantom rows."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import boto3
import pytest
from faultkit import (
    TinyVerifier,
    app_in_thread,
    assert_exactly_once,
    gymops,
    job_body,
    read_output,
    task_row,
    wait_or_dump,
    write_spec,
)

from gym_operator.api import parse_resource
from gym_operator.data.builder import build_dataset
from gym_operator.rollout.parts import encode_jsonl
from gym_operator.storage.manifest import read_manifest, read_success
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI, parse_uri
from gym_operator.testing.s3_fault_proxy import FaultPlan, S3FaultProxy
from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

TASKS, REPEATS, KILLS = 100, 2, 10
FAILING = {7, 33, 64}  # tasks the model refuses (HTTP 400): typed failure rows
KILL_POINTS = ["part", "manifest", "model", "random"]


def uncommitted_files(storage: Storage, prefix: StorageURI) -> list[str]:
    """Part, failure and error files under shard 0 that its manifest does not name."""
    manifest = read_manifest(storage, prefix, 0)
    named = set()
    for part in manifest.parts if manifest else []:
        named |= {part.rollouts_file, part.failures_file, part.errors_file}
    return [
        obj.name
        for obj in storage.list(prefix.join("shard-00000"))
        if obj.name != "_manifest.json" and obj.name not in named
    ]


def kill_at(point: str, proc, proxy: S3FaultProxy, stub: StubModel, rng: random.Random) -> bool:
    """Wait for the kill point, SIGKILL; False when the worker finished first."""
    if point in ("part", "manifest"):
        pattern = r"/(part|failures)-\d+" if point == "part" else r"/_manifest\.json$"
        gate = proxy.hold("PUT", pattern)
        deadline = time.monotonic() + 30
        while not gate.wait_held(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
    elif point == "model":
        time.sleep(rng.uniform(0.3, 1.0))
        deadline = time.monotonic() + 10
        while stub.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
    else:
        time.sleep(rng.uniform(0.05, 1.5))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    proxy.release_all()
    return True


@pytest.mark.slow
def test_ten_kills_lose_and_duplicate_nothing(
    tmp_path: Path, s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    rows = [task_row(i, "#fault:400" if i in FAILING else "") for i in range(TASKS)]
    body_bytes = "".join(json.dumps(r) + "\n" for r in rows).encode()
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="in/tasks.jsonl", Body=body_bytes)
    prefix = parse_uri(f"s3://{s3_bucket}/out/")
    s3_proxy.plan = FaultPlan(slowdown=0.05, drop_after=0.03)
    stub = StubModel(StubConfig(latency=0.05))
    verifier = TinyVerifier()
    log = tmp_path / "generate.log"
    rng = random.Random(8)
    kills: list[str] = []
    left_uncommitted = 0
    with serve_in_thread(stub) as base_url, app_in_thread(verifier.app()) as ver_url:
        body = job_body(
            f"s3://{s3_bucket}/in/tasks.jsonl",
            str(prefix),
            base_url,
            ver_url,
            sampling={"numRepeats": REPEATS, "concurrency": 4},
            output={"partRows": 5, "partSeconds": 0.3},
            s3={"endpointURL": s3_proxy.url, "region": "us-east-1"},
        )
        spec = write_spec(tmp_path / "job.yaml", body)
        for round_ in range(KILLS + 10):
            if len(kills) == KILLS:
                break
            point = KILL_POINTS[round_ % len(KILL_POINTS)]
            proc = gymops("generate", "--spec", spec, "--shard", "0/1", log=log)
            if kill_at(point, proc, s3_proxy, stub, rng):
                kills.append(point)
                if point == "manifest":
                    left_uncommitted += len(uncommitted_files(clean_storage, prefix))
            else:
                wait_or_dump(proc, 30, log)
                s3_proxy.release_all()
        final = gymops("generate", "--spec", spec, "--shard", "0/1", log=log)
        assert wait_or_dump(final, 120, log) == 0, log.read_text()[-3000:]

    assert len(kills) == KILLS, kills
    assert left_uncommitted > 0, "no kill hit the window between part upload and manifest write"
    out = read_output(clean_storage, prefix)
    assert_exactly_once(out, TASKS, REPEATS)
    assert sorted(out.failure_keys()) == [(t, r) for t in sorted(FAILING) for r in range(REPEATS)]
    assert {r["failure"]["class"] for r in out.failures} == {"http_4xx"}
    assert all(r["failure"]["attempts"] == 1 for r in out.failures)
    assert len(out.rollouts) == (TASKS - len(FAILING)) * REPEATS
    for row in out.rollouts:
        assert row["reward"] == (1.0 if row["_ng_rollout_index"] == 0 else 0.0)
    success = read_success(clean_storage, prefix)
    assert success is not None
    assert (success.completed, success.failed) == (len(out.rollouts), len(out.failures))
    assert s3_proxy.stats["slowdown"] > 0 and s3_proxy.stats["held"] >= KILLS // 2

    # Uploads a crash cut off before their manifest write (rows that repeat committed slots)
    # must not reach a dataset: its builder reads through the manifests too.
    shard_dir = prefix.join("shard-00000")
    clean_storage.write_bytes(shard_dir.join("part-00999.jsonl"), encode_jsonl(out.rollouts[:7]))
    clean_storage.write_bytes(shard_dir.join("failures-00999.jsonl"), encode_jsonl(out.failures))
    spec = parse_resource(
        {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "Dataset",
            "spec": {
                "sources": [{"uri": str(prefix)}],
                "kind": "sft",
                "format": "trl",
                "filters": {"dedup": "none"},
                "sft": {"selection": "all"},
                "output": {"uri": str(tmp_path / "dataset")},
            },
        }
    ).spec
    summary = build_dataset(
        spec, name="crashed", source_uris=[str(prefix)], output_uri=str(tmp_path / "dataset"),
        storage=clean_storage,
    )  # fmt: skip
    assert summary.counts.input == TASKS * REPEATS
    assert summary.counts.kept == len(out.rollouts) == 194
    assert summary.counts.dropped == {"failed": len(out.failures)}


def test_two_shards_success_marker_only_when_both_finished(
    tmp_path: Path, s3_proxy: S3FaultProxy, s3_bucket: str, clean_storage: Storage
) -> None:
    """Shard 1 finishes; shard 0 is killed between its part upload and its manifest write:
    no `_SUCCESS` until shard 0's restart finishes, then totals over both shards."""
    tasks, repeats = 30, 2
    rows = [task_row(i) for i in range(tasks)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    clean_storage.write_bytes(parse_uri(f"s3://{s3_bucket}/in/tasks.jsonl"), data)
    prefix = parse_uri(f"s3://{s3_bucket}/out/")
    log = tmp_path / "generate.log"
    with serve_in_thread(StubModel()) as base_url, app_in_thread(TinyVerifier().app()) as ver_url:
        body = job_body(
            f"s3://{s3_bucket}/in/tasks.jsonl",
            str(prefix),
            base_url,
            ver_url,
            sampling={"numRepeats": repeats, "concurrency": 4},
            output={"partRows": 5, "partSeconds": 0.3},
            s3={"endpointURL": s3_proxy.url, "region": "us-east-1"},
            parallelism=2,
        )
        spec = write_spec(tmp_path / "job.yaml", body)
        shard1 = gymops("generate", "--spec", spec, "--shard", "1/2", log=log)
        assert wait_or_dump(shard1, 60, log) == 0
        assert read_success(clean_storage, prefix) is None
        gate = s3_proxy.hold("PUT", r"/shard-00000/_manifest\.json$")
        shard0 = gymops("generate", "--spec", spec, "--shard", "0/2", log=log)
        assert gate.wait_held(30), log.read_text()[-2000:]
        shard0.send_signal(signal.SIGKILL)
        assert shard0.wait(10) == -signal.SIGKILL
        s3_proxy.release_all()
        assert read_success(clean_storage, prefix) is None
        assert uncommitted_files(clean_storage, prefix), "the kill missed the upload window"
        shard0 = gymops("generate", "--spec", spec, "--shard", "0/2", log=log)
        assert wait_or_dump(shard0, 60, log) == 0

    out = read_output(clean_storage, prefix)
    assert [m.shard for m in out.manifests] == [0, 1]
    assert all(m.finished and m.num_shards == 2 for m in out.manifests)
    assert_exactly_once(out, tasks, repeats)
    assert [m.completed for m in out.manifests] == [tasks // 2 * repeats] * 2
    success = read_success(clean_storage, prefix)
    assert success is not None and (success.completed, success.failed) == (tasks * repeats, 0)
    assert len(success.manifests) == 2

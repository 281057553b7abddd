"""SIGKILL a `gymops generate` process at random points, restart it: every slot exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from rolloutkit import math_task, verifier_in_thread, write_job, write_tasks

from gym_operator.rollout.output import read_committed
from gym_operator.storage.manifest import read_manifest, read_success
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import free_port
from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

TASKS, REPEATS, KILLS = 60, 4, 4


def _generate(spec: Path, verifier_url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gym_operator.cli",
            "generate",
            "--spec",
            str(spec),
            "--shard",
            "0/1",
            "--verifier-url",
            verifier_url,
            *extra,
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def test_sigkill_and_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(TASKS)])
    output = tmp_path / "out"
    prefix = parse_uri(str(output))
    storage = Storage()
    stub = StubModel(StubConfig(latency=0.05, latency_dist="lognormal", sigma=0.5, seed=3))
    progress_at_kill = []
    with serve_in_thread(stub) as url, verifier_in_thread() as verifier_url:
        spec = write_job(
            tmp_path / "job.yaml",
            tasks_uri=str(tasks),
            output_uri=str(output),
            base_url=url,
            sampling={"numRepeats": REPEATS, "concurrency": 12},
            output={"uri": str(output), "partRows": 7, "partSeconds": 0.2},
        )
        for _ in range(KILLS):
            before = read_manifest(storage, prefix, 0)
            before_done = before.completed if before else 0
            proc = _generate(spec, verifier_url, tmp_path / "generate.log")
            deadline = time.monotonic() + 30
            # wait until this run committed something new, then a random moment more
            while time.monotonic() < deadline and proc.poll() is None:
                now = read_manifest(storage, prefix, 0)
                if now is not None and now.completed > before_done:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            manifest = read_manifest(storage, prefix, 0)
            progress_at_kill.append(manifest.completed if manifest else 0)
        proc = _generate(spec, verifier_url, tmp_path / "generate.log")
        assert proc.wait(60) == 0, (tmp_path / "generate.log").read_text()[-3000:]

    total = TASKS * REPEATS
    print("completed at each kill:", progress_at_kill)
    assert sum(0 < done < total for done in progress_at_kill) >= 2, progress_at_kill
    out = read_committed(storage, prefix)
    slots = Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert set(slots) == {(t, r) for t in range(TASKS) for r in range(REPEATS)}
    assert max(slots.values()) == 1
    assert out.failures == [] and out.errors == []
    manifest = read_manifest(storage, prefix, 0)
    assert manifest is not None and manifest.finished and manifest.completed == total
    assert read_success(storage, prefix) is not None
    # partial uploads of killed runs may lie around, but only manifest-listed parts count
    listed = {p.rollouts_file for p in manifest.parts}
    assert len(listed) == len(manifest.parts)


def test_sigterm_commits_and_exits_resumable(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(TASKS)])
    output = tmp_path / "out"
    prefix = parse_uri(str(output))
    storage = Storage()
    stub = StubModel(StubConfig(latency=0.1))
    with serve_in_thread(stub) as url, verifier_in_thread() as verifier_url:
        spec = write_job(
            tmp_path / "job.yaml",
            tasks_uri=str(tasks),
            output_uri=str(output),
            base_url=url,
            sampling={"numRepeats": REPEATS, "concurrency": 8},
            output={"uri": str(output), "partRows": 1000, "partSeconds": 600},
        )
        port = free_port()
        proc = _generate(spec, verifier_url, tmp_path / "generate.log", "--metrics-port", str(port))
        while stub.requests < 60 and proc.poll() is None:
            time.sleep(0.02)
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"gymops_model_request_seconds_count" in scrape
        assert b"gymops_model_requests_in_flight" in scrape
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 3  # stopped, resumable
        manifest = read_manifest(storage, prefix, 0)
        # nothing had been committed before (huge parts): SIGTERM committed what was done
        assert manifest is not None and not manifest.finished
        assert 0 < manifest.completed < TASKS * REPEATS
        # drained: every request the model received was finished, verified and committed
        assert manifest.completed == stub.requests
        proc = _generate(spec, verifier_url, tmp_path / "generate.log")
        assert proc.wait(60) == 0
    out = read_committed(storage, prefix)
    slots = Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert len(slots) == TASKS * REPEATS and max(slots.values()) == 1
    assert out.failures == []

"""SIGTERM (a pod evicted or a node drained): `gymops generate` commits what is done, exits 3
(resumable) within the grace period, and the restarted shard finishes with every slot once."""

from __future__ import annotations

import signal
import time
from pathlib import Path

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
    write_tasks,
)

from gym_operator.storage.manifest import read_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

TASKS, REPEATS, CONCURRENCY, EXIT_INTERRUPTED = 60, 2, 4, 3


def test_sigterm_commits_exits_resumable_and_resume_completes(tmp_path: Path) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task_row(i) for i in range(TASKS)])
    prefix = parse_uri(str(tmp_path / "out"))
    storage = Storage()
    stub = StubModel(StubConfig(latency=0.1))
    log = tmp_path / "generate.log"
    with serve_in_thread(stub) as base_url, app_in_thread(TinyVerifier().app()) as ver_url:
        body = job_body(
            tasks,
            str(prefix),
            base_url,
            ver_url,
            sampling={"numRepeats": REPEATS, "concurrency": CONCURRENCY},
            output={"partRows": 5, "partSeconds": 0.3},
        )
        spec = write_spec(tmp_path / "job.yaml", body)
        proc = gymops("generate", "--spec", spec, log=log)
        deadline = time.monotonic() + 30
        while (read_manifest(storage, prefix, 0) or None) is None:
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        requests_at_term = stub.requests
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(10) == EXIT_INTERRUPTED, log.read_text()[-2000:]
        stopped_in = time.monotonic() - started
        stopped = read_manifest(storage, prefix, 0)
        assert stopped is not None and not stopped.finished
        assert 0 < stopped.completed < TASKS * REPEATS
        assert stopped.completed + stopped.failed >= requests_at_term - CONCURRENCY
        resumed = gymops("generate", "--spec", spec, log=log)
        assert wait_or_dump(resumed, 60, log) == 0, log.read_text()[-2000:]

    out = read_output(storage, prefix)
    assert_exactly_once(out, TASKS, REPEATS)
    assert out.failures == []
    assert out.manifests[0].finished
    assert stopped_in < 5
    # Requests in flight at SIGTERM are abandoned, not drained: at most `concurrency` are redone.
    assert TASKS * REPEATS <= stub.requests <= TASKS * REPEATS + CONCURRENCY

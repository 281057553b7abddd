"""A shard with more parts than one manifest segment holds: requeue and resume stay exactly-once."""

from __future__ import annotations

from pathlib import Path

from rolloutkit import make_job, math_task, write_tasks

from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.manifest import SEGMENT_PARTS, read_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

TASKS = SEGMENT_PARTS + 36
FLAKY = {t for t in range(TASKS) if t % 10 == 3}
"""Tasks whose first model request answers 500: a failure row in the first run."""


async def test_failures_in_sealed_segments_are_sampled_again_once(tmp_path: Path) -> None:
    rows = [math_task(i, "#fault:500x1" if i in FLAKY else "") for i in range(TASKS)]
    prefix = parse_uri(str(tmp_path / "out"))
    with serve_in_thread(StubModel(StubConfig(latency=0.02))) as url:
        job = make_job(
            tasks_uri=str(write_tasks(tmp_path / "t.jsonl", rows)),
            output_uri=str(prefix),
            base_url=url,
            sampling={"numRepeats": 1, "concurrency": 1},
            output={"uri": str(prefix), "partRows": 1},
            retry={"maxAttempts": 1, "requestTimeoutSeconds": 5, "maxRetrySeconds": 20},
            failurePolicy={"maxFailedFraction": 0.0, "minFinished": 0},
        )
        first = await run_job(job.spec, shards=[0])
        manifest = read_manifest(Storage(), prefix, 0)
        assert not first.success and first.failed_reason
        assert manifest is not None and manifest.segments, "no part entries were sealed"
        assert manifest.failed == len(FLAKY) and len(manifest.parts) > SEGMENT_PARTS

        second = await run_job(job.spec, shards=[0])

    assert second.success
    out = read_committed(Storage(), prefix)
    keys = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert keys == [(t, 0) for t in range(TASKS)]
    assert out.failures == []
    final = read_manifest(Storage(), prefix, 0)
    assert final is not None and (final.completed, final.failed) == (TASKS, 0)
    assert final.done_slots().intervals() == [(0, TASKS)]

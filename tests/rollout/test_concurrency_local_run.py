"""A local run with `sampling.concurrency: auto` against the simulated batching server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client import REGISTRY
from rolloutkit import make_job, math_task, write_tasks

from gym_operator.rollout.generator import ShardStats
from gym_operator.rollout.runner import run_job
from gym_operator.storage.manifest import read_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing import sim_gpu
from gym_operator.testing.loopback import run_in_thread


async def test_auto_run_finishes_every_rollout_within_max_concurrency(tmp_path: Path) -> None:
    profile = replace(sim_gpu.PROFILES["kv-bound"], step_base=0.001, step_per_seq=0.00001)
    server = sim_gpu.SimServer(profile)
    reports: list[ShardStats] = []
    with run_in_thread(lambda: sim_gpu.start(server), name="sim-gpu") as url:
        job = make_job(
            tasks_uri=str(write_tasks(tmp_path / "t.jsonl", [math_task(i) for i in range(50)])),
            output_uri=str(tmp_path / "out"),
            base_url=url,
            sampling={"numRepeats": 4, "concurrency": "auto"},
            policy={"baseURL": url, "model": "sim", "maxConcurrency": 24},
        )
        result = await run_job(job.spec, shards=[0], on_progress=reports.append)
    stats = result.shards[0]
    assert result.success
    assert (stats.completed, stats.failed) == (200, 0)
    assert server.engine.stats.completed == 200
    assert reports and all(1 <= r.concurrency_limit <= 24 for r in reports)
    assert 1 <= (REGISTRY.get_sample_value("gymops_concurrency_window") or 0) <= 24
    # the manifest carries the limit, where the operator reads it into status.progress
    manifest = read_manifest(Storage(), parse_uri(str(tmp_path / "out")), 0)
    assert manifest is not None and 1 <= (manifest.concurrency_limit or 0) <= 24

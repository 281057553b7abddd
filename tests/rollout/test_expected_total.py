"""Every shard manifest knows how many rollouts its shard expects from its first commit on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rolloutkit import make_job, math_task, write_tasks

from gym_operator.controller.progress import expected_total
from gym_operator.rollout.generator import ShardInterrupted, ShardStats
from gym_operator.rollout.runner import run_job
from gym_operator.storage.manifest import read_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

TASKS, REPEATS = 40, 2


def _input(path: Path) -> Path:
    """40 lines: line 0 is not JSON, line 1 is empty (not a task), the rest are good tasks."""
    rows: list[dict | bytes] = [b"{not json", b""]
    rows += [math_task(i) for i in range(2, TASKS)]
    return write_tasks(path, rows)


async def _run_until(spec, *, shards: list[int], stop_after: int) -> list[int]:
    """Run until `stop_after` rollouts are done, then stop (as SIGTERM does); returns totals."""
    stop = asyncio.Event()
    totals: list[int] = []

    def on_progress(stats: ShardStats) -> None:
        if stats.done >= stop_after:
            stop.set()

    with pytest.raises(ShardInterrupted):
        await run_job(
            spec, shards=shards, on_progress=on_progress, stop=stop, on_total=totals.append
        )
    return totals


@pytest.mark.parametrize("parallelism", [1, 2])
def test_first_commit_of_a_stopped_run_has_expected_rollouts(
    tmp_path: Path, parallelism: int
) -> None:
    tasks = _input(tmp_path / "tasks.jsonl")
    output = tmp_path / "out"
    stub = StubModel(StubConfig(latency=0.02))
    with serve_in_thread(stub) as url:
        spec = make_job(
            tasks_uri=str(tasks),
            output_uri=str(output),
            base_url=url,
            parallelism=parallelism,
            sampling={"numRepeats": REPEATS, "concurrency": 4},
            verifier={"url": url.removesuffix("/v1")},  # the stub's substring /verify
            # one commit only: the one made when the run stops
            output={"uri": str(output), "partRows": 10_000, "partSeconds": 600},
        ).spec
        totals = asyncio.run(_run_until(spec, shards=[0], stop_after=6))
    manifest = read_manifest(Storage(), parse_uri(str(output)), 0)
    assert manifest is not None and not manifest.finished
    assert len(manifest.parts) == 1
    assert 6 <= manifest.completed + manifest.failed < (TASKS - 2) * REPEATS // parallelism
    # shard 0 owns lines 0, N, 2N...: line 0 is a bad row (its slots are input errors, not
    # rollouts); for N=1 line 1 (empty) is not a task at all.
    good_tasks = TASKS - 2 if parallelism == 1 else TASKS // 2 - 1
    assert manifest.input_errors == 1
    assert manifest.expected_rollouts == good_tasks * REPEATS
    # the local progress bar counts every slot of the shards run, bad rows included
    assert totals == [(good_tasks + 1) * REPEATS]
    if parallelism == 1:
        assert expected_total([manifest], hint=None) == good_tasks * REPEATS


def test_expected_rollouts_unchanged_when_the_shard_finishes(tmp_path: Path) -> None:
    tasks = _input(tmp_path / "tasks.jsonl")
    output = tmp_path / "out"
    stub = StubModel(StubConfig(latency=0.01))
    with serve_in_thread(stub) as url:
        spec = make_job(
            tasks_uri=str(tasks),
            output_uri=str(output),
            base_url=url,
            sampling={"numRepeats": REPEATS, "concurrency": 4},
            verifier={"url": url.removesuffix("/v1")},  # the stub's substring /verify
            output={"uri": str(output), "partRows": 5, "partSeconds": 600},
        ).spec
        asyncio.run(_run_until(spec, shards=[0], stop_after=12))
        stopped = read_manifest(Storage(), parse_uri(str(output)), 0)
        asyncio.run(run_job(spec, shards=[0]))
    finished = read_manifest(Storage(), parse_uri(str(output)), 0)
    assert stopped is not None and finished is not None and finished.finished
    assert stopped.expected_rollouts == finished.expected_rollouts == (TASKS - 2) * REPEATS
    assert finished.completed + finished.failed == finished.expected_rollouts

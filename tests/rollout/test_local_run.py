"""A whole RolloutJob against the stub model and the built-in math verifier, with exact counts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from rolloutkit import make_job, math_task, write_job, write_tasks

from gym_operator import cli
from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.manifest import read_all_manifests, read_success
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubConfig, StubModel, start

TASKS = 10  # task 7 always gets 400 (model failure), task 8 has no expected answer (verifier)


def _tasks(path: Path) -> Path:
    rows = [math_task(i) for i in range(TASKS)]
    rows[3] = math_task(3, "#length")
    rows[5] = math_task(5, "#fault:500x1")
    rows[7] = math_task(7, "#fault:400")
    del rows[8]["expected_answer"]
    return write_tasks(path, rows)


def _check_output(storage: Storage, output: str) -> None:
    prefix = parse_uri(output)
    out = read_committed(storage, prefix)
    slots = Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    slots.update((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.failures)
    assert set(slots) == {(t, r) for t in range(TASKS) for r in range(4)}
    assert max(slots.values()) == 1
    assert len(out.rollouts) == 32 and len(out.failures) == 8
    failures = Counter(f["failure"]["class"] for f in out.failures)
    assert failures == {"http_4xx": 4, "verifier_unscorable": 4}
    assert all(f["failure"]["attempts"] == 1 for f in out.failures)
    assert all(f["_ng_task_index"] in (7, 8) for f in out.failures)
    for row in out.rollouts:
        expected = 1.0 if row["_ng_rollout_index"] % 2 == 0 and row["_ng_task_index"] != 3 else 0.0
        assert row["reward"] == expected, row["_ng_task_index"]
        assert row["task_type"] == "sum" and "responses_create_params" in row
        assert row["response"]["object"] == "response"
    truncated = [r for r in out.rollouts if r["response"]["status"] == "incomplete"]
    assert {r["_ng_task_index"] for r in truncated} == {3} and len(truncated) == 4
    manifests = read_all_manifests(storage, prefix)
    assert len(manifests) == 2 and all(m.finished for m in manifests)
    assert sum(m.expected_rollouts or 0 for m in manifests) == 40
    assert sum(m.completed for m in manifests) == 32
    assert sum(m.truncated for m in manifests) == 4
    assert sum(m.passed for m in manifests) == 14
    success = read_success(storage, prefix)
    assert success is not None and success.completed == 32 and success.failed == 8


@pytest.mark.parametrize(
    ("fmt", "compression", "api"),
    [
        ("jsonl", "zstd", "chat"),
        ("jsonl", "gzip", "responses"),
        ("parquet", "none", "chat"),
    ],
)
async def test_file_output_exact_counts(
    tmp_path: Path, stub: tuple[StubModel, str], fmt: str, compression: str, api: str
) -> None:
    model, url = stub
    job = make_job(
        tasks_uri=str(_tasks(tmp_path / "tasks.jsonl")),
        output_uri=f"file://{tmp_path}/out",
        base_url=url,
        policy={"baseURL": url, "model": "stub", "api": api},
        parallelism=2,
        output={
            "uri": f"file://{tmp_path}/out",
            "format": fmt,
            "compression": compression,
            "partRows": 7,
        },
    )
    result = await run_job(job.spec, shards=[0, 1])
    assert result.success
    _check_output(Storage(), f"file://{tmp_path}/out")
    assert (
        model.counts[
            (math_task(5, "#fault:500x1")["responses_create_params"]["input"][0]["content"], 0)
        ]
        == 2
    )


async def test_s3_output_exact_counts(
    tmp_path: Path, stub: tuple[StubModel, str], s3_bucket: str
) -> None:
    _, url = stub
    storage = Storage()
    storage.write_bytes(
        f"s3://{s3_bucket}/in/tasks.jsonl", _tasks(tmp_path / "t.jsonl").read_bytes()
    )
    output = f"s3://{s3_bucket}/runs/one/"
    job = make_job(
        tasks_uri=f"s3://{s3_bucket}/in/tasks.jsonl",
        output_uri=output,
        base_url=url,
        parallelism=2,
        output={"uri": output, "partRows": 5},
    )
    for shard in (1, 0):  # two "pods", the last one writes _SUCCESS
        result = await run_job(job.spec, shards=[shard])
    assert result.success
    _check_output(storage, output)


def test_cli_run_prints_summary(
    tmp_path: Path, stub: tuple[StubModel, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = stub
    spec = write_job(
        tmp_path / "job.yaml",
        tasks_uri=str(_tasks(tmp_path / "tasks.jsonl")),
        output_uri=str(tmp_path / "out"),
        base_url=url,
        parallelism=2,
    )
    assert cli.main(["run", str(spec), "--no-progress"]) == 0
    text = capsys.readouterr().out
    for needle in ("completed", "32", "http_4xx", "verifier_unscorable", "0.4375", "_SUCCESS"):
        assert needle in text
    _check_output(Storage(), str(tmp_path / "out"))
    # running again finds everything done and changes nothing
    assert cli.main(["run", str(spec), "--no-progress"]) == 0
    _check_output(Storage(), str(tmp_path / "out"))


async def test_local_mode_runs_its_shards_side_by_side(tmp_path: Path) -> None:
    """parallelism 3 x concurrency 2: six requests in flight at once, as three pods would send,
    never more; and every slot exactly once."""
    model = StubModel(StubConfig(latency=0.1))
    runner, url = await start(model)
    rows = [math_task(i) for i in range(30)]
    job = make_job(
        tasks_uri=str(write_tasks(tmp_path / "tasks.jsonl", rows)),
        output_uri=str(tmp_path / "out"),
        base_url=url,
        parallelism=3,
        sampling={"numRepeats": 2, "concurrency": 2},
    )
    try:
        result = await run_job(job.spec, shards=[0, 1, 2])
    finally:
        await runner.cleanup()
    assert result.success
    assert model.max_in_flight == 6
    out = read_committed(Storage(), parse_uri(str(tmp_path / "out")))
    slots = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert slots == [(t, r) for t in range(30) for r in range(2)]

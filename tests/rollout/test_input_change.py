"""An output prefix belongs to one input object: a changed input is refused unless --restart."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from rolloutkit import make_job, math_task, write_job, write_tasks

from gym_operator import cli
from gym_operator.rollout.job import JobConflict
from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel

EXIT_CONFLICT = 4


def test_changed_input_file_is_refused_unless_restart(
    tmp_path: Path, stub: tuple[StubModel, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(3)])
    out = tmp_path / "out"
    spec = write_job(tmp_path / "job.yaml", tasks_uri=str(tasks), output_uri=str(out), base_url=url)
    assert cli.main(["run", str(spec), "--no-progress"]) == 0
    assert cli.main(["run", str(spec), "--no-progress"]) == 0  # same input: resumes (no-op)
    capsys.readouterr()

    write_tasks(tasks, [math_task(i) for i in range(5)])
    assert cli.main(["run", str(spec), "--no-progress"]) == EXIT_CONFLICT
    message = capsys.readouterr().out.replace("\n", "")
    assert "spec.input.uri" in message and str(tasks) in message and "--restart" in message
    assert len(read_committed(Storage(), parse_uri(str(out))).rollouts) == 12  # untouched

    assert cli.main(["run", str(spec), "--no-progress", "--restart"]) == 0
    assert len(read_committed(Storage(), parse_uri(str(out))).rollouts) == 20


def test_touched_input_file_counts_as_changed(tmp_path: Path, stub: tuple[StubModel, str]) -> None:
    _, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(2)])
    out = str(tmp_path / "out")
    spec = make_job(tasks_uri=str(tasks), output_uri=out, base_url=url).spec
    asyncio.run(run_job(spec, shards=[0]))
    stat = tasks.stat()
    os.utime(tasks, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(JobConflict, match="spec.input.uri"):
        asyncio.run(run_job(spec, shards=[0]))


async def test_changed_input_object_on_s3_is_refused(
    tmp_path: Path, stub: tuple[StubModel, str], s3_bucket: str
) -> None:
    _, url = stub
    storage = Storage()
    uri = f"s3://{s3_bucket}/in/tasks.jsonl"
    storage.write_bytes(
        uri, write_tasks(tmp_path / "a.jsonl", [math_task(i) for i in range(3)]).read_bytes()
    )
    output = f"s3://{s3_bucket}/runs/one/"
    spec = make_job(tasks_uri=uri, output_uri=output, base_url=url).spec
    await run_job(spec, shards=[0], storage=storage)
    await run_job(spec, shards=[0], storage=storage)  # unchanged object: resume is fine

    storage.write_bytes(
        uri, write_tasks(tmp_path / "b.jsonl", [math_task(i) for i in range(4)]).read_bytes()
    )
    with pytest.raises(JobConflict, match=f"spec.input.uri {uri} changed"):
        await run_job(spec, shards=[0], storage=storage)
    assert len(read_committed(storage, parse_uri(output)).rollouts) == 12

    result = await run_job(spec, shards=[0], storage=storage, restart=True)
    assert result.success
    assert len(read_committed(storage, parse_uri(output)).rollouts) == 16

"""An output prefix belongs to one spec: a changed spec is refused unless --restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rolloutkit import math_task, write_job, write_tasks

from gym_operator import cli
from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel


def _edit(path: Path, section: str, **values: object) -> None:
    body = yaml.safe_load(path.read_text())
    body["spec"][section].update(values)
    path.write_text(yaml.safe_dump(body))


def test_changed_spec_is_refused_unless_restart(
    tmp_path: Path, stub: tuple[StubModel, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(3)])
    spec = write_job(
        tmp_path / "job.yaml", tasks_uri=str(tasks), output_uri=str(tmp_path / "out"), base_url=url
    )
    assert cli.main(["run", str(spec), "--no-progress"]) == 0
    capsys.readouterr()

    _edit(spec, "sampling", concurrency=3)  # does not change results: accepted
    assert cli.main(["run", str(spec), "--no-progress"]) == 0
    capsys.readouterr()

    _edit(spec, "sampling", numRepeats=2)
    assert cli.main(["run", str(spec), "--no-progress"]) == 4
    message = capsys.readouterr().out
    assert "different spec" in message and "--restart" in message
    before = read_committed(Storage(), parse_uri(str(tmp_path / "out")))
    assert len(before.rollouts) == 12  # untouched

    assert cli.main(["run", str(spec), "--no-progress", "--restart"]) == 0
    after = read_committed(Storage(), parse_uri(str(tmp_path / "out")))
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in after.rollouts) == [
        (t, r) for t in range(3) for r in range(2)
    ]

"""`gymops generate`: shard from --shard or JOB_COMPLETION_INDEX, and its exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from rolloutkit import make_job, math_task, write_job, write_tasks

from gym_operator import cli
from gym_operator.errors import BadSpec, ExitCode
from gym_operator.rollout.entrypoint import resolve_shard
from gym_operator.rollout.job import prepare_prefix
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri


def test_shard_from_flag_or_job_completion_index(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_shard("2/4", 4) == 2
    with pytest.raises(BadSpec, match="must equal spec.parallelism"):
        resolve_shard("1/3", 4)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    assert resolve_shard(None, 4) == 3
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "4")
    with pytest.raises(BadSpec, match="JOB_COMPLETION_INDEX"):
        resolve_shard(None, 4)
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    assert resolve_shard(None, 1) == 0


def test_bad_spec_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("kind: RolloutJob\nspec: {input: {uri: x}}\n")
    assert cli.main(["generate", "--spec", str(spec), "--shard", "0/1"]) == ExitCode.BAD_SPEC


def test_other_spec_on_the_prefix_exits_4(tmp_path: Path) -> None:
    tasks = str(write_tasks(tmp_path / "t.jsonl", [math_task(0)]))
    out = str(tmp_path / "out")
    other = make_job(tasks_uri=tasks, output_uri=out, base_url="http://127.0.0.1:9/v1")
    other.spec.sampling.num_repeats = 7
    prepare_prefix(Storage(), parse_uri(out), other.spec, restart=False)
    spec = write_job(
        tmp_path / "job.yaml", tasks_uri=tasks, output_uri=out, base_url="http://127.0.0.1:9/v1"
    )
    code = cli.main(["generate", "--spec", str(spec), "--verifier-url", "http://127.0.0.1:9"])
    assert code == ExitCode.CONFLICT


def test_missing_input_exits_2(tmp_path: Path) -> None:
    spec = write_job(
        tmp_path / "job.yaml",
        tasks_uri=str(tmp_path / "absent.jsonl"),
        output_uri=str(tmp_path / "out"),
        base_url="http://127.0.0.1:9/v1",
    )
    args = ["generate", "--spec", str(spec), "--verifier-url", "http://127.0.0.1:9"]
    assert cli.main(args) == ExitCode.BAD_SPEC
    assert cli.main(["run", str(spec)]) == ExitCode.BAD_SPEC

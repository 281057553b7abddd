"""How `gymops generate` ends: a fault nobody classified is retried (1), never failed for good."""

from __future__ import annotations

from pathlib import Path

from rolloutkit import make_job, math_task, verifier_in_thread, write_job, write_tasks

from gym_operator import cli
from gym_operator.errors import ExitCode
from gym_operator.rollout.job import prepare_prefix
from gym_operator.storage import layout
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel


def test_a_manifest_that_does_not_parse_exits_1_and_says_why(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    tasks = str(write_tasks(tmp_path / "t.jsonl", [math_task(i) for i in range(3)]))
    out = str(tmp_path / "out")
    job = make_job(tasks_uri=tasks, output_uri=out, base_url=url)
    prepare_prefix(Storage(), parse_uri(out), job.spec, restart=False)
    Storage().write_bytes(layout.manifest_uri(parse_uri(out), 0), b'{"shard": 0, "parts": [')
    spec = write_job(tmp_path / "job.yaml", tasks_uri=tasks, output_uri=out, base_url=url)
    message = tmp_path / "termination-log"
    message.write_text("")
    with verifier_in_thread() as verifier:
        code = cli.main(
            ["generate", "--spec", str(spec), "--shard", "0/1", "--verifier-url", verifier]
            + ["--termination-log", str(message)]
        )
    assert code == ExitCode.ERROR
    assert "shard 0/1 failed: ValidationError" in message.read_text()


def test_a_spec_file_that_is_not_there_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    message = tmp_path / "termination-log"
    message.write_text("")
    code = cli.main(["generate", "--spec", str(missing), "--termination-log", str(message)])
    assert code == ExitCode.BAD_SPEC
    assert str(missing) in message.read_text()

"""Bad task rows land in the errors file with line and reason; every good row still runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rolloutkit import math_task, write_job

from gym_operator import cli
from gym_operator.rollout.output import read_committed
from gym_operator.storage.manifest import read_all_manifests
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel


def test_bad_rows_go_to_errors_and_good_rows_all_run(
    tmp_path: Path, stub: tuple[StubModel, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = stub
    lines = [
        json.dumps(math_task(0)).encode(),  # line 1
        b"{broken",  # line 2
        b"",  # line 3: skipped
        b"\xff\xfe\x00 not utf-8",  # line 4
        b'"a string"',  # line 5
        b'{"prompt": "no responses_create_params"}',  # line 6
        json.dumps(math_task(1)).encode() + b"\r",  # line 7: CRLF
        b'{"responses_create_params": {"input": "' + b"y" * 3000 + b'"}}',  # line 8: too big
        json.dumps(math_task(2)).encode(),  # line 9
    ]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(b"\n".join(lines) + b"\n")
    spec = write_job(
        tmp_path / "job.yaml",
        tasks_uri=str(tasks),
        output_uri=str(tmp_path / "out"),
        base_url=url,
        parallelism=2,
    )
    text = spec.read_text().replace(
        "uri: " + str(tasks), "uri: " + str(tasks) + "\n    maxRowBytes: 2048"
    )
    spec.write_text(text)
    assert cli.main(["run", str(spec), "--no-progress"]) == 0

    prefix = parse_uri(str(tmp_path / "out"))
    out = read_committed(Storage(), prefix)
    errors = {e["line"]: e["reason"] for e in out.errors}
    assert sorted(errors) == [2, 4, 5, 6, 8]
    assert "malformed JSON" in errors[2]
    assert "not UTF-8" in errors[4]
    assert "not a JSON object" in errors[5]
    assert "no responses_create_params" in errors[6]
    assert "maxRowBytes" in errors[8]
    assert all("excerpt" in e for e in out.errors)
    done = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert done == [(t, r) for t in (0, 6, 8) for r in range(4)]
    assert not out.failures
    assert sum(m.input_errors for m in read_all_manifests(Storage(), prefix)) == 5
    summary = capsys.readouterr().out
    row = next(line for line in summary.splitlines() if "input errors" in line)
    assert row.split("│")[2].strip() == "5"

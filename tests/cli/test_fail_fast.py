"""`gymops run` stops a job that cannot work before it writes anything or spends a request."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml
from clikit import gymops, math_task, output_of, tree, write_job, write_tasks

from gym_operator.testing.stub_model import StubModel


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_verifier_key_is_refused_before_any_model_request(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    model, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(4)])
    out = tmp_path / "out"
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        output=out,
        base_url=url,
        verifier={"builtin": "exact_match", "config": {"mdoe": "contains"}},
    )
    proc = gymops("run", str(job), "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 2, text
    assert "config.mdoe" in text and "did you mean mode?" in text
    assert model.requests == 0
    assert not out.exists()


def test_bad_verifier_value_is_refused_naming_the_field(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    model, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(0)])
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        output=tmp_path / "out",
        base_url=url,
        verifier={"builtin": "math", "config": {"extraction": "boxd"}},
    )
    proc = gymops("run", str(job), "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 2, text
    assert "config.extraction" in text and "'boxd'" in text
    assert model.requests == 0


def test_wrong_model_port_is_stopped_by_the_preflight_with_nothing_written(
    tmp_path: Path,
) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(16)])
    out = tmp_path / "out"
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        output=out,
        base_url=f"http://127.0.0.1:{_free_port()}/v1",
    )
    proc = gymops("run", str(job), "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 5, text
    assert "preflight" in text and "nothing was written" in text
    assert "policy.baseURL" in text
    assert "Traceback" not in text
    assert tree(out) == {}


def test_unscorable_first_answer_is_stopped_by_the_preflight(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    rows = [math_task(i) for i in range(4)]
    for row in rows:
        del row["expected_answer"]
    tasks = write_tasks(tmp_path / "tasks.jsonl", rows)
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", tasks=tasks, output=out, base_url=url)
    proc = gymops("run", str(job), "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 5, text
    assert "could not score" in text and "expected_answer" in text
    assert tree(out) == {}


def test_a_working_job_passes_the_preflight_and_runs(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(4)])
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", tasks=tasks, output=out, base_url=url)
    proc = gymops("run", str(job), "--no-progress")
    assert proc.returncode == 0, output_of(proc)
    assert (out / "_SUCCESS").exists()


def test_a_dataset_that_keeps_no_rows_fails_unless_allowed(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    rows = [dict(math_task(i), expected_answer="-1") for i in range(3)]
    tasks = write_tasks(tmp_path / "tasks.jsonl", rows)
    out = tmp_path / "rollouts"
    job = write_job(tmp_path / "job.yaml", tasks=tasks, output=out, base_url=url)
    assert gymops("run", str(job), "--no-progress").returncode == 0
    dataset: dict = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "sft"},
        "spec": {
            "sources": [{"uri": str(out)}],
            "kind": "sft",
            "filters": {"minReward": 0.5},
            "format": "trl",
            "output": {"uri": str(tmp_path / "dataset")},
        },
    }
    spec_file = tmp_path / "dataset.yaml"
    spec_file.write_text(yaml.safe_dump(dataset))
    proc = gymops("run", str(spec_file))
    text = output_of(proc)
    assert proc.returncode == 2, text
    assert "0 rows kept of 6 rollouts" in text and "allowEmpty" in text

    dataset["spec"]["output"]["allowEmpty"] = True
    spec_file.write_text(yaml.safe_dump(dataset))
    assert gymops("run", str(spec_file)).returncode == 0

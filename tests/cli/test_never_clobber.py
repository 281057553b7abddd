"""A refused run leaves every file as it was; --restart never empties a prefix that is not ours."""

from __future__ import annotations

from pathlib import Path

from clikit import gymops, math_task, output_of, tree, write_job, write_tasks

from gym_operator.testing.stub_model import StubModel


def _finished_job(tmp_path: Path, url: str) -> tuple[Path, Path, Path]:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(4)])
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", tasks=tasks, output=out, base_url=url)
    first = gymops("run", str(job), "--no-progress")
    assert first.returncode == 0, output_of(first)
    return tasks, out, job


def test_changed_spec_is_refused_naming_the_fields_and_nothing_changes(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    model, url = stub
    tasks, out, _ = _finished_job(tmp_path, url)
    before = tree(tmp_path)
    requests = model.requests
    changed = write_job(
        tmp_path / "changed.yaml",
        tasks=tasks,
        output=out,
        base_url=url,
        sampling={"numRepeats": 3, "concurrency": 4},
        verifier={"builtin": "math", "config": {"extraction": "boxed"}},
    )
    before = tree(tmp_path)
    proc = gymops("run", str(changed), "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 4, text
    assert "sampling.numRepeats: 2 -> 3" in text
    assert 'verifier.config.extraction: (unset) -> "boxed"' in text
    assert tree(tmp_path) == before
    assert model.requests == requests


def test_restart_refuses_a_prefix_without_our_job_record_and_deletes_nothing(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    model, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(2)])
    foreign = tmp_path / "foreign"
    (foreign / "models").mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    (foreign / "models" / "weights.bin").write_bytes(b"\0" * 100)
    job = write_job(tmp_path / "job.yaml", tasks=tasks, output=foreign, base_url=url)
    before = tree(tmp_path)
    proc = gymops("run", str(job), "--restart", "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 4, text
    assert "no _job.json" in text and "notes.txt" in text and "nothing was deleted" in text
    assert tree(tmp_path) == before
    assert model.requests == 0


def test_restart_refuses_the_directory_holding_the_input(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    tasks, out, _ = _finished_job(tmp_path, url)
    job = write_job(tmp_path / "job2.yaml", tasks=tasks, output=tmp_path, base_url=url)
    before = tree(tmp_path)
    proc = gymops("run", str(job), "--restart", "--no-progress")
    text = output_of(proc)
    assert proc.returncode == 4, text
    assert "holds the input file" in text
    assert tree(tmp_path) == before


def test_restart_of_our_own_prefix_starts_over_and_keeps_foreign_files(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    tasks, out, _ = _finished_job(tmp_path, url)
    (out / "README.txt").write_text("kept")
    changed = write_job(
        tmp_path / "changed.yaml",
        tasks=tasks,
        output=out,
        base_url=url,
        sampling={"numRepeats": 1, "concurrency": 4},
    )
    proc = gymops("run", str(changed), "--restart", "--no-progress")
    assert proc.returncode == 0, output_of(proc)
    assert (out / "README.txt").read_text() == "kept"
    assert '"num_repeats": 1' in (out / "_job.json").read_text()


def test_failed_preflight_leaves_a_corrected_rerun_free_to_start(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(2)])
    out = tmp_path / "out"
    broken = write_job(
        tmp_path / "broken.yaml", tasks=tasks, output=out, base_url=url.replace("/v1", "/v9")
    )
    first = gymops("run", str(broken), "--no-progress")
    assert first.returncode == 5, output_of(first)
    assert tree(out) == {}
    fixed = write_job(
        tmp_path / "fixed.yaml",
        tasks=tasks,
        output=out,
        base_url=url,
        sampling={"numRepeats": 3, "concurrency": 4},
    )
    second = gymops("run", str(fixed), "--no-progress")
    assert second.returncode == 0, output_of(second)

"""The progress bar shows `done/?` while the input is being counted, never `0/None`, and the
shards' current concurrency limit."""

from __future__ import annotations

import io
from pathlib import Path

from clikit import gymops, math_task, output_of, write_job, write_tasks
from rich.console import Console
from rich.progress import Progress

from gym_operator.cli_run import _CountColumn
from gym_operator.testing.stub_model import StubModel


def test_unknown_total_reads_as_a_question_mark() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    with Progress(_CountColumn(), console=console, transient=False) as progress:
        task = progress.add_task("rollouts", total=None)
        progress.update(task, completed=0)
        assert str(_CountColumn().render(progress.tasks[task])) == "0/?"
        progress.update(task, total=8, completed=3)
        assert str(_CountColumn().render(progress.tasks[task])) == "3/8"
    assert "None" not in out.getvalue()


def test_the_progress_line_shows_the_concurrency_limit(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(6)])
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        output=tmp_path / "out",
        base_url=url,
        sampling={"numRepeats": 2, "concurrency": 3},
    )
    proc = gymops("run", str(job))
    text = output_of(proc)
    assert proc.returncode == 0, text
    assert "12/12" in text and "concurrency 3" in text

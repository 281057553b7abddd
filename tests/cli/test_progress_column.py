"""The progress bar shows `done/?` while the input is being counted, never `0/None`."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from gym_operator.cli_run import _CountColumn


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

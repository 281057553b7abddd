"""`gymops show PREFIX [--task N]`: committed rollouts, the repeats of a task side by side.

Parts are decompressed and read through the manifests (what is not in a manifest does not
exist). Each task gets a table: one column per repeat with its reward and the final answer text,
and the task's failures below it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gym_operator.rollout.output import iter_committed
from gym_operator.storage.manifest import read_job_record
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.verify.base import response_text

EXIT_OK, EXIT_NOT_FOUND = 0, 2
ANSWER_CHARS = 600


def collect(
    storage: Storage, uri: str, task: int | None
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """task index -> {"rollout": rows, "failure": rows}, for one task or all of them."""
    tasks: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for kind, row in iter_committed(storage, parse_uri(uri)):
        index = row.get("_ng_task_index")
        if kind == "error" or not isinstance(index, int) or (task is not None and index != task):
            continue
        tasks[index][kind].append(row)
    return tasks


def task_table(index: int, rows: dict[str, list[dict[str, Any]]]) -> Table:
    """One task: its prompt as the title, a column per repeat (reward and answer)."""
    rollouts = sorted(rows.get("rollout", []), key=lambda r: r.get("_ng_rollout_index", 0))
    first = rollouts[0] if rollouts else {}
    expected = first.get("expected_answer")
    title = f"task {index}" + (f" (expected {expected})" if expected is not None else "")
    table = Table(title=title, show_lines=True, expand=True)
    for row in rollouts:
        table.add_column(
            f"repeat {row.get('_ng_rollout_index')}  reward {row.get('reward')}", ratio=1
        )
    if rollouts:
        table.add_row(*(Text(_answer(r)) for r in rollouts))
    for failure in rows.get("failure", []):
        info = failure.get("failure") or {}
        table.caption = (table.caption or "") + (
            f"repeat {failure.get('_ng_rollout_index')} failed: {info.get('class')} "
            f"({str(info.get('message', ''))[:120]})\n"
        )
    return table


def _answer(row: dict[str, Any]) -> str:
    text = response_text(row.get("response") or {})
    return text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + " ..."


def prompt_of(rows: dict[str, list[dict[str, Any]]]) -> str:
    """The task's last user message, as sent."""
    for row in rows.get("rollout", []):
        source = (row.get("responses_create_params") or {}).get("input")
        if isinstance(source, str):
            return source
        for message in reversed(source or []):
            if isinstance(message, dict) and message.get("role", "user") == "user":
                content = message.get("content")
                return content if isinstance(content, str) else str(content)
    return ""


def main(args: argparse.Namespace) -> int:
    """`gymops show PREFIX [--task N] [--limit K]`."""
    console = Console()
    storage = Storage()
    try:
        prefix = parse_uri(args.prefix)
        if read_job_record(storage, prefix) is None:
            console.print(f"[red]{escape(str(prefix))} holds no _job.json[/red]", soft_wrap=True)
            return EXIT_NOT_FOUND
        tasks = collect(storage, str(prefix), args.task)
    finally:
        storage.close()
    if not tasks:
        which = f"task {args.task}" if args.task is not None else "any task"
        console.print(f"[yellow]no committed rollouts of {which} under {escape(str(prefix))}[/]")
        return EXIT_NOT_FOUND
    for index in sorted(tasks)[: None if args.task is not None else args.limit]:
        console.print(Text(f"prompt: {prompt_of(tasks[index])}", style="bold"))
        console.print(task_table(index, tasks[index]))
    return EXIT_OK

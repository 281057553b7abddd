"""`gymops status PREFIX`: where a RolloutJob's output stands, read from its files alone.

Counts from the shard manifests (completed, failed, bad input, expected), failure classes with
one example message each (from the failure files), rate since the job started, an ETA, and
whether `_SUCCESS` is there. Works on file:// and s3:// prefixes, with or without a cluster.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gym_operator.rollout.output import iter_committed
from gym_operator.storage.manifest import (
    ShardManifest,
    read_all_manifests,
    read_job_record,
    read_success,
)
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI, parse_uri

EXIT_OK, EXIT_ERROR, EXIT_NOT_A_JOB = 0, 1, 2


@dataclass
class JobStatus:
    """What the files of one output prefix say."""

    prefix: str
    shards: int
    shards_finished: int = 0
    completed: int = 0
    failed: int = 0
    input_errors: int = 0
    passed: int = 0
    reward_sum: float = 0.0
    expected: int | None = None
    started: float | None = None
    updated: float | None = None
    success: bool = False
    failure_classes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Rollouts with an outcome."""
        return self.completed + self.failed

    @property
    def rate(self) -> float | None:
        """Rollouts per second between the job's start and the last commit."""
        if self.started is None or self.updated is None or self.updated <= self.started:
            return None
        return self.done / (self.updated - self.started)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the average rate (None when unknown or finished)."""
        if self.success or self.expected is None or not self.rate:
            return None
        return max(0.0, (self.expected - self.done) / self.rate)


def read_status(storage: Storage, prefix: StorageURI) -> JobStatus | None:
    """The status of a prefix, or None when it holds no `_job.json`."""
    record = read_job_record(storage, prefix)
    if record is None:
        return None
    status = JobStatus(prefix=str(prefix), shards=record.num_shards, started=record.created_at)
    manifests = read_all_manifests(storage, prefix)
    _add_manifests(status, manifests, record.num_shards)
    status.success = read_success(storage, prefix) is not None
    if status.failed:
        for kind, row in iter_committed(storage, prefix):
            if kind == "failure":
                failure = row.get("failure") or {}
                name = str(failure.get("class", "?"))
                status.failure_classes[name] += 1
                status.examples.setdefault(name, str(failure.get("message", ""))[:200])
    return status


def _add_manifests(status: JobStatus, manifests: list[ShardManifest], shards: int) -> None:
    expected: list[int | None] = []
    for m in manifests:
        status.completed += m.completed
        status.failed += m.failed
        status.input_errors += m.input_errors
        status.passed += m.passed
        status.reward_sum += m.reward_sum
        status.shards_finished += m.finished
        expected.append(m.expected_rollouts)
        status.updated = max(status.updated or 0.0, m.updated_at)
    if len(manifests) == shards and all(e is not None for e in expected):
        status.expected = sum(e for e in expected if e is not None)


def render(status: JobStatus) -> Table:
    """The status as a two-column table."""
    total = "?" if status.expected is None else str(status.expected)
    pct = f" ({100 * status.done / status.expected:.1f}%)" if status.expected else ""
    rate, eta = status.rate, status.eta_seconds
    rows = [
        ("prefix", status.prefix),
        ("rollouts done", f"{status.done}/{total}{pct}"),
        ("completed", str(status.completed)),
        ("failed", str(status.failed)),
        *(
            (f"  {cls}", f"{n}  e.g. {status.examples.get(cls, '')}")
            for cls, n in status.failure_classes.most_common()
        ),
        ("bad input rows", str(status.input_errors)),
        ("reward mean", f"{status.reward_sum / status.completed:.4f}" if status.completed else "-"),
        ("pass rate", f"{status.passed / status.completed:.4f}" if status.completed else "-"),
        ("shards finished", f"{status.shards_finished}/{status.shards}"),
        ("rate", f"{rate:.2f} rollouts/s" if rate else "-"),
        ("ETA", _duration(eta) if eta is not None else "-"),
        ("last commit", _ago(status.updated)),
        ("_SUCCESS", "yes" if status.success else "no"),
    ]
    table = Table(title="RolloutJob output", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    return table


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _ago(when: float | None) -> str:
    return "-" if when is None else f"{_duration(max(0.0, time.time() - when))} ago"


def main(args: argparse.Namespace) -> int:
    """`gymops status PREFIX`."""
    console = Console()
    storage = Storage()
    try:
        prefix = parse_uri(args.prefix)
        status = read_status(storage, prefix)
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return EXIT_NOT_A_JOB
    finally:
        storage.close()
    if status is None:
        console.print(
            f"[red]{escape(str(prefix))} holds no _job.json: not the output of a RolloutJob "
            "(or nothing was committed yet)[/red]",
            soft_wrap=True,
        )
        return EXIT_NOT_A_JOB
    console.print(render(status))
    return EXIT_OK

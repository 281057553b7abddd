"""`gymops run FILE.yaml`: local mode. Runs a RolloutJob's shards (or a Dataset) on this machine.

The RolloutJob goes through the very generator code a pod runs, shard after shard, with a rich
progress bar and a summary table. Exit codes are those of `gymops generate` (see
`gym_operator.rollout.entrypoint`); Ctrl-C commits what is done and exits 3, and running the same
command again resumes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from gym_operator import errors, redaction
from gym_operator.api import Dataset, RolloutJob, SpecError, load_resources
from gym_operator.api.loading import Resource
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.errors import ExitCode
from gym_operator.rollout import heap
from gym_operator.rollout.breaker import EndpointDown
from gym_operator.rollout.entrypoint import shard_from_flag
from gym_operator.rollout.generator import ShardStats
from gym_operator.rollout.job import check_prefix
from gym_operator.rollout.runner import Endpoint, JobResult, run_job
from gym_operator.storage import errors as storage_errors
from gym_operator.storage.manifest import read_all_manifests
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri

log = logging.getLogger(__name__)


def main(args: argparse.Namespace) -> int:
    """Run the file's resource locally; returns the exit code."""
    console = Console()
    try:
        resources = load_resources(args.file)
        jobs = _run_order(resources, args.file, args.output)
    except (SpecError, OSError) as exc:
        print_error(console, exc)
        return ExitCode.BAD_SPEC
    for resource in jobs:
        if isinstance(resource, Dataset):
            code = _run_dataset(resource, args.output if len(jobs) == 1 else None, console)
        else:
            code = _refuse_cluster_only(resource, args.file, console) or run_rollout_job(
                resource, args, console
            )
        if code != ExitCode.OK:
            return code
    return ExitCode.OK


def _refuse_cluster_only(job: RolloutJob, source: str, console: Console) -> int:
    """ExitCode.BAD_SPEC (after saying why) for a job whose model endpoint only the operator can
    provide (`policy.server`, `policy.endpointRef`); 0 when it can run here."""
    policy = job.spec.policy
    if policy.server is None and policy.endpoint_ref is None:
        return 0
    field = "policy.server" if policy.server is not None else "policy.endpointRef"
    print_error(console, f"{source}: {field} needs the operator; locally use baseURL")
    return ExitCode.BAD_SPEC


def _run_order(resources: list[Resource], source: str, output: str | None) -> list[Resource]:
    """One resource, or a RolloutJob then the Datasets that read it (rolloutJobRef resolved to
    the job's output URI, `--output` applying to the job); SpecError for other combinations."""
    if len(resources) == 1:
        return resources
    jobs = [r for r in resources if isinstance(r, RolloutJob)]
    datasets = [r for r in resources if isinstance(r, Dataset)]
    if len(jobs) != 1:
        raise SpecError(
            source, [f"(top level): expected one RolloutJob and its Datasets, found {len(jobs)}"]
        )
    job = jobs[0]
    if output:
        spec = job.spec.model_copy(
            update={"output": job.spec.output.model_copy(update={"uri": output})}
        )
        job = job.model_copy(update={"spec": spec})
    return [job, *(_with_job_output(d, job) for d in datasets)]


def _with_job_output(dataset: Dataset, job: RolloutJob) -> Dataset:
    sources = [
        s.model_copy(update={"rollout_job_ref": None, "uri": job.spec.output.uri})
        if s.rollout_job_ref is not None and s.rollout_job_ref == job.metadata.name
        else s
        for s in dataset.spec.sources
    ]
    return dataset.model_copy(update={"spec": dataset.spec.model_copy(update={"sources": sources})})


def print_error(console: Console, problem: object) -> None:
    """Print an error in red; its text is escaped (an extra like `.[local]` is not markup)."""
    console.print(f"[red]{escape(redaction.redact_text(str(problem)))}[/red]")


def _run_dataset(dataset: Dataset, output: str | None, console: Console) -> int:
    try:
        local = importlib.import_module("gym_operator.data.local")
    except ImportError as exc:
        print_error(console, f"Dataset local mode is not available: {exc}")
        return ExitCode.ERROR
    try:
        local.run_dataset(dataset, output, console)
    except errors.GymopsError as exc:
        print_error(console, exc.reason())
        return exc.exit_code
    except Exception as exc:
        return _unexpected(console, exc, "dataset build")
    return ExitCode.OK


def run_rollout_job(job: RolloutJob, args: argparse.Namespace, console: Console) -> int:
    """Run a loaded RolloutJob with `gymops run`'s flags; returns the exit code."""
    spec = job.spec
    if args.output:
        spec = spec.model_copy(
            update={"output": spec.output.model_copy(update={"uri": args.output})}
        )
    shards = list(range(spec.parallelism))
    if args.shard:
        try:
            shards = [shard_from_flag(args.shard, spec.parallelism)]
        except errors.BadSpec as exc:
            print_error(console, exc)
            return exc.exit_code
    started = time.monotonic()
    try:
        _check_prefix(spec, restart=args.restart)
        heap.settle()
        result = asyncio.run(_run(spec, shards, args, console))
    except errors.GymopsError as exc:
        return _stopped(console, exc)
    except Exception as exc:
        return _unexpected(console, exc, "run")
    _print_summary(console, spec, result, time.monotonic() - started)
    if result.failed_reason:
        print_error(console, f"Job failed: {result.failed_reason}")
        console.print("No _SUCCESS was written; the committed rows are kept.")
        return ExitCode.TOO_MANY_FAILURES
    return ExitCode.OK


def _unexpected(console: Console, error: Exception, what: str) -> ExitCode:
    """Say what failed on an error nobody classified (one line; the traceback at --log-level
    DEBUG); ERROR."""
    log.debug("%s failed", what, exc_info=error)
    explained = storage_errors.explain(error)
    print_error(console, explained or f"{what} failed: {type(error).__name__}: {error}")
    return ExitCode.ERROR


def _stopped(console: Console, error: errors.GymopsError) -> ExitCode:
    """Say why the run stopped, and what to do; its exit code."""
    if isinstance(error, errors.Interrupted):
        console.print("[yellow]Stopped; committed rollouts are kept. Run again to resume.[/yellow]")
        return error.exit_code
    print_error(console, error.reason())
    if isinstance(error, EndpointDown):
        console.print(
            "Fix the endpoint (policy.baseURL, the key, verifier) and run again to resume."
        )
    return error.exit_code


def _check_prefix(spec: RolloutJobSpec, *, restart: bool) -> None:
    """Refuse a conflicting or unsafe prefix before an embedded model is started (read-only)."""
    storage = Storage(S3Settings.from_spec(spec.s3))
    try:
        check_prefix(storage, parse_uri(spec.output.uri), spec, restart=restart)
    finally:
        storage.close()


@contextlib.asynccontextmanager
async def _endpoint(spec: RolloutJobSpec) -> AsyncIterator[Endpoint | None]:
    if not spec.policy.embedded:
        yield None
        return
    try:
        embedded = importlib.import_module("gym_operator.rollout.embedded")
    except ImportError as exc:
        raise errors.BadSpec(
            f"policy.embedded={spec.policy.embedded!r} needs gym_operator.rollout.embedded "
            f"and the `local` extra (pip install -e .[local]): {exc}"
        ) from None
    manager = embedded.start_embedded(spec.policy.embedded)
    if hasattr(manager, "__aenter__"):
        async with manager as (base_url, model):
            yield Endpoint(base_url, model)
        return
    with manager as (base_url, model):
        yield Endpoint(base_url, model)


async def _run(
    spec: RolloutJobSpec, shards: list[int], args: argparse.Namespace, console: Console
) -> JobResult:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    storage = Storage(S3Settings.from_spec(spec.s3))
    with _progress(console, disabled=args.no_progress) as progress:
        reporter = _Reporter(progress, spec.sampling.num_repeats)
        async with _endpoint(spec) as endpoint:
            return await run_job(
                spec,
                shards=shards,
                restart=args.restart,
                endpoint=endpoint,
                on_progress=reporter,
                stop=stop,
                storage=storage,
                on_total=reporter.set_total,
                preflight=True,
            )


@contextlib.contextmanager
def _progress(console: Console, *, disabled: bool) -> Iterator[Progress | None]:
    if disabled:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]rollouts"),
        BarColumn(),
        TaskProgressColumn(),
        _CountColumn(),
        TextColumn("{task.fields[rate]:.1f}/s"),
        TimeRemainingColumn(),
        TextColumn("reward {task.fields[reward]}"),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("concurrency {task.fields[limit]}"),
        console=console,
        transient=False,
    )
    with progress:
        yield progress


class _CountColumn(ProgressColumn):
    """`done/total`, or `done/?` while the input is still being counted."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:.0f}"
        return Text(f"{task.completed:.0f}/{total}")


class _Reporter:
    """Turns per-shard stats into progress-bar updates (at most ten a second)."""

    def __init__(self, progress: Progress | None, repeats: int) -> None:
        self.progress = progress
        self.repeats = repeats
        self.shards: dict[int, ShardStats] = {}
        self.started = time.monotonic()
        self.last = 0.0
        self.task = (
            progress.add_task("rollouts", total=None, rate=0.0, reward="-", failed=0, limit="-")
            if progress is not None
            else None
        )

    def set_total(self, total: int) -> None:
        """The slots of the shards run here, once the generator has counted the input."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=total)

    def __call__(self, stats: ShardStats) -> None:
        self.shards[stats.shard] = stats
        now = time.monotonic()
        if (
            self.progress is None
            or self.task is None
            or (now - self.last < 0.1 and not stats.finished)
        ):
            return
        self.last = now
        done = sum(s.done + s.input_errors * self.repeats for s in self.shards.values())
        fresh = done - sum(s.resumed for s in self.shards.values())
        completed = sum(s.completed for s in self.shards.values())
        reward = sum(s.reward_sum for s in self.shards.values()) / completed if completed else None
        self.progress.update(
            self.task,
            completed=done,
            rate=fresh / max(now - self.started, 1e-6),
            reward="-" if reward is None else f"{reward:.3f}",
            failed=sum(s.failed for s in self.shards.values()),
            limit=sum(s.concurrency_limit for s in self.shards.values()) or "-",
        )


def _failures_by_class(storage: Storage, output_uri: str) -> Counter[str]:
    import json

    prefix = parse_uri(output_uri)
    found: Counter[str] = Counter()
    for manifest in read_all_manifests(storage, prefix):
        for part in manifest.parts:
            if part.failures_file:
                uri = prefix.join(f"shard-{manifest.shard:05d}", part.failures_file)
                for line in storage.read_bytes(uri).splitlines():
                    found[json.loads(line)["failure"]["class"]] += 1
    return found


def _print_summary(
    console: Console, spec: RolloutJobSpec, result: JobResult, seconds: float
) -> None:
    shards = result.shards
    completed = sum(s.completed for s in shards)
    failed = sum(s.failed for s in shards)
    reward_sum = sum(s.reward_sum for s in shards)
    passed = sum(s.passed for s in shards)
    storage = Storage(S3Settings.from_spec(spec.s3))
    by_class = _failures_by_class(storage, result.output_uri) if failed else Counter()
    rows: list[tuple[str, Any]] = [
        ("completed", completed),
        ("failed", failed),
        *((f"  failed: {cls}", n) for cls, n in sorted(by_class.items())),
        ("input errors", sum(s.input_errors for s in shards)),
        ("truncated", sum(s.truncated for s in shards)),
        ("reward mean", f"{reward_sum / completed:.4f}" if completed else "-"),
        ("pass rate", f"{passed / completed:.4f}" if completed else "-"),
        ("output", result.output_uri),
        ("job complete (_SUCCESS)", "yes" if result.success else "no (other shards pending)"),
        ("wall time", f"{seconds:.1f} s"),
    ]
    table = Table(title="RolloutJob summary", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)

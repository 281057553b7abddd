"""`gymops demo`: the embedded demo. Math tasks -> SmolLM2 on loopback -> math verifier -> dataset.

Runs the shipped RolloutJob (with resolved paths) through `gymops run` (local mode: the same
generator code a pod runs; it starts and stops the embedded model server), builds the Dataset
from the rollouts and prints a summary read back from the files. The specs are saved into
`--output` once the rollouts' checks passed, so a refused run changes nothing there. Running it
again resumes (or, when finished, only re-reads) the rollouts; `--restart` samples afresh.
"""

from __future__ import annotations

import argparse
import importlib.resources
import shlex
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gym_operator import cli, cli_run
from gym_operator.api import Dataset, RolloutJob, SpecError, load_resource
from gym_operator.data.local import run_dataset
from gym_operator.data.reader import GroupReader
from gym_operator.errors import ExitCode
from gym_operator.rollout import embedded
from gym_operator.rollout.job import spec_digest
from gym_operator.storage.manifest import read_job_record
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.verify.base import response_text

TASKS_FILE = "gsm_demo.jsonl"
JOB_FILE = "demo.yaml"
DATASET_FILE = "demo-dataset.yaml"


@dataclass
class TaskResult:
    """The rollouts of one task as the summary shows them."""

    task_index: int
    task_id: str
    task_type: str
    expected: str
    rewards: list[float] = field(default_factory=list)
    failures: int = 0
    sample_answer: str = ""


def sample_path(name: str) -> Path:
    """A file shipped in gym_operator/samples/."""
    return Path(str(importlib.resources.files("gym_operator").joinpath("samples", name)))


def demo_specs(
    output: Path, limit: int | None = None, repeats: int | None = None
) -> tuple[RolloutJob, Dataset]:
    """The shipped demo specs, pointed at the packaged tasks and at `output`."""
    job = load_resource(sample_path(JOB_FILE))
    dataset = load_resource(sample_path(DATASET_FILE))
    if not isinstance(job, RolloutJob) or not isinstance(dataset, Dataset):
        raise SpecError(str(sample_path(JOB_FILE)), ["demo specs are not a RolloutJob + Dataset"])
    rollouts_uri = f"file://{output / 'rollouts'}/"
    spec = job.spec
    sampling = spec.sampling
    if repeats is not None:
        sampling = sampling.model_copy(update={"num_repeats": repeats})
    job.spec = spec.model_copy(
        update={
            "input": spec.input.model_copy(
                update={"uri": f"file://{sample_path(TASKS_FILE)}", "limit": limit}
            ),
            "output": spec.output.model_copy(update={"uri": rollouts_uri}),
            "sampling": sampling,
        }
    )
    ds = dataset.spec
    dataset.spec = ds.model_copy(
        update={
            "sources": [ds.sources[0].model_copy(update={"uri": rollouts_uri})],
            "output": ds.output.model_copy(update={"uri": f"file://{output / 'dataset'}/"}),
        }
    )
    return job, dataset


def write_spec(resource: RolloutJob | Dataset, path: Path) -> Path:
    """Save a resource as YAML, so `gymops run PATH` repeats this step by hand."""
    path.write_text(yaml.safe_dump(resource.wire(), sort_keys=False), encoding="utf-8")
    return path


def read_results(output_uri: str) -> tuple[list[TaskResult], float]:
    """Per-task rewards and failures read back from the output, and the pass threshold."""
    storage = Storage()
    try:
        reader = GroupReader(storage, [output_uri])
        results = [
            _task_result(group.task_index, group.rollouts, group.failures)
            for group in reader.groups()
        ]
        threshold = reader.sources[0].pass_threshold if reader.sources else 1.0
    finally:
        storage.close()
    return sorted(results, key=lambda r: r.task_index), threshold


def _task_result(task_index: int, rollouts: list[dict[str, Any]], failures: int) -> TaskResult:
    first = rollouts[0] if rollouts else {}
    result = TaskResult(
        task_index=task_index,
        task_id=str(first.get("id", task_index)),
        task_type=str(first.get("task_type", "-")),
        expected=str(first.get("expected_answer", "-")),
        failures=failures,
    )
    for row in sorted(rollouts, key=lambda r: r.get("_ng_rollout_index", 0)):
        result.rewards.append(float(row.get("reward", 0.0)))
    if rollouts:
        text = response_text(first.get("response") or {})
        result.sample_answer = " ".join(text.split())[:200]
    return result


def task_table(results: list[TaskResult], threshold: float, width: int = 80) -> Table:
    """One row per task: id, expected answer, passes per repeat and the first answer."""
    rows = []
    for r in results:
        passed = sum(1 for x in r.rewards if x >= threshold)
        marks = "".join("✓" if x >= threshold else "✗" for x in r.rewards) + "!" * r.failures
        rows.append((r.task_id, r.expected, f"{passed}/{len(r.rewards)} {marks}"))
    table = Table(title="per-task pass rates (✓ passed, ✗ failed, ! no reward)")
    used = 1
    for i, name in enumerate(("task", "expected", "passed")):
        column_width = max([len(name), *(len(row[i]) for row in rows)])
        table.add_column(name, no_wrap=True, min_width=column_width)
        used += column_width + 3
    answer_width = max(16, width - used - 4)
    table.add_column("first answer", no_wrap=True, overflow="ellipsis", max_width=answer_width)
    for row, r in zip(rows, results, strict=True):
        table.add_row(*(Text(c) for c in (*row, r.sample_answer)))
    return table


def summary_table(
    results: list[TaskResult], threshold: float, dataset: Any, output: Path, seconds: float
) -> Table:
    """Totals: rollouts, reward mean, pass rate (overall and per task type), dataset, files."""
    rewards = [x for r in results for x in r.rewards]
    by_type: dict[str, list[float]] = defaultdict(list)
    for r in results:
        by_type[r.task_type].extend(r.rewards)
    rates = [sum(x >= threshold for x in r.rewards) / len(r.rewards) for r in results if r.rewards]
    spread = Counter("0" if p == 0 else "1" if p == 1 else "between" for p in rates)
    rows: list[tuple[str, str]] = [
        ("tasks", str(len(results))),
        ("rollouts", str(len(rewards))),
        ("failures", str(sum(r.failures for r in results))),
        ("reward mean", f"{sum(rewards) / len(rewards):.3f}" if rewards else "-"),
        ("pass rate", _rate(rewards, threshold)),
        *((f"  pass rate: {kind}", _rate(xs, threshold)) for kind, xs in sorted(by_type.items())),
        (
            "tasks passed never / sometimes / always",
            f"{spread['0']} / {spread['between']} / {spread['1']}",
        ),
        (
            "dataset rows (train / validation)",
            f"{dataset.counts.kept} ({dataset.splits.train} / {dataset.splits.validation})",
        ),
        ("rollout files", str(output / "rollouts")),
        ("dataset files", str(output / "dataset")),
        ("specs (rerun with gymops run)", str(output / "*.yaml")),
        ("wall time", f"{seconds:.0f} s"),
    ]
    table = Table(title="gymops demo", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    return table


def _rate(rewards: list[float], threshold: float) -> str:
    if not rewards:
        return "-"
    return f"{sum(x >= threshold for x in rewards) / len(rewards):.3f}"


def _claimed(job: RolloutJob) -> bool:
    """Whether the rollouts prefix is now this job's (its checks passed and `_job.json` is ours)."""
    storage = Storage()
    try:
        record = read_job_record(storage, parse_uri(job.spec.output.uri))
    finally:
        storage.close()
    return record is not None and record.digest == spec_digest(job.spec)


def run_demo(
    output: Path,
    console: Console,
    limit: int | None = None,
    repeats: int | None = None,
    restart: bool = False,
) -> int:
    """Rollouts with the embedded model, then the dataset, then the summary; an exit code."""
    started = time.monotonic()
    job, dataset = demo_specs(output, limit, repeats)
    model = job.spec.policy.embedded or ""
    try:
        embedded.model_path(model)
        embedded.check_server_installed()
    except embedded.EmbeddedModelError as exc:
        console.print(Text(str(exc), style="red"))
        return ExitCode.ERROR
    console.rule("[bold]1/3 rollouts: SmolLM2-135M-Instruct on loopback, math verifier")
    run_args = ["run", "-", *(["--restart"] if restart else [])]
    code = cli_run.run_rollout_job(job, cli.build_parser().parse_args(run_args), console)
    if _claimed(job):
        output.mkdir(parents=True, exist_ok=True)
        write_spec(job, output / "rolloutjob.yaml")
        write_spec(dataset, output / "dataset.yaml")
    if code == ExitCode.CONFLICT:
        console.print(
            f"{output} holds a demo run with other settings: run `gymops demo --restart` to "
            "start over there, or choose another --output."
        )
    if code != ExitCode.OK:
        return code
    console.rule("[bold]2/3 dataset: SFT rows in TRL's format")
    built = run_dataset(dataset, None, console)
    console.rule("[bold]3/3 results")
    results, threshold = read_results(job.spec.output.uri)
    console.print(task_table(results, threshold, console.width))
    console.print(summary_table(results, threshold, built, output, time.monotonic() - started))
    console.print(
        Text(f"Browse the rollouts and the dataset: {view_command(output)}", style="bold")
    )
    return ExitCode.OK


def view_command(output: Path) -> str:
    """The `gymops view` command over the demo's rollouts and dataset."""
    return shlex.join(["gymops", "view", str(output / "rollouts"), str(output / "dataset")])


def main(args: argparse.Namespace) -> int:
    """`gymops demo --output DIR`; returns the exit code."""
    console = Console()
    output = Path(args.output).expanduser().resolve()
    try:
        return run_demo(
            output,
            console,
            getattr(args, "limit", None),
            getattr(args, "repeats", None),
            restart=getattr(args, "restart", False),
        )
    except SpecError as exc:
        cli_run.print_error(console, exc)
        return ExitCode.BAD_SPEC
    except (ValueError, OSError) as exc:
        cli_run.print_error(console, f"demo failed: {exc}")
        return ExitCode.ERROR
    except KeyboardInterrupt:
        console.print("[yellow]Stopped. Run the demo again to resume.[/yellow]")
        return ExitCode.INTERRUPTED

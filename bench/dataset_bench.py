"""Dataset builder benchmark: a DPO dataset from N tasks x R repeats of synthetic rollouts.

Phase 1 writes the rollouts as committed zstd JSONL parts on file:// (like a RolloutJob with
`parallelism` shards, parts of `--part-rows` rollouts interleaving the tasks in flight). Phase 2
builds the dataset in a fresh child process and reports rollouts/s and that process's peak RSS.

    .venv/bin/python bench/dataset_bench.py                    # 250,000 tasks x 4 = 1,000,000
    .venv/bin/python bench/dataset_bench.py --tasks 10000      # quick run
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data.builder import build_dataset
from gym_operator.data.synthetic import commit_rows, finish_job, rollout_row, start_job
from gym_operator.storage.store import Storage

WINDOW_TASKS = 64  # tasks in flight at once, as with a generator of concurrency ~256 / 4 repeats


def write_source(uri: str, tasks: int, repeats: int, shards: int, part_rows: int) -> None:
    """Commit tasks x repeats rollouts; within a shard, parts interleave a window of tasks."""
    storage = Storage()
    rng = random.Random(7)
    manifests = start_job(storage, uri, num_shards=shards, num_repeats=repeats)
    for shard in range(shards):
        buffer: list[dict] = []
        shard_tasks = range(shard, tasks, shards)
        for start in range(0, len(shard_tasks), WINDOW_TASKS):
            window = shard_tasks[start : start + WINDOW_TASKS]
            slots = [(t, r) for t in window for r in range(repeats)]
            rng.shuffle(slots)
            for task, rep in slots:
                reward = rng.choice((0.0, 0.25, 0.5, 1.0))
                text = f"Let me think step by step about problem {task}. " * 3
                text += f"The answer is {task * 7 + rep}."
                buffer.append(rollout_row(task, rep, text, reward, expected_answer=str(task * 7)))
                if len(buffer) >= part_rows:
                    manifests[shard] = commit_rows(storage, uri, manifests[shard], buffer)
                    buffer = []
        if buffer:
            manifests[shard] = commit_rows(storage, uri, manifests[shard], buffer)
    finish_job(storage, uri, manifests)


def build(source: str, output: str, file_format: str) -> None:
    """Phase 2 (child process): build, then print one JSON line with the figures."""
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source}],
            "kind": "dpo",
            "format": "trl",
            "pairing": {"strategy": "best_vs_worst", "minQualityDifference": 0.1},
            "split": {"validationFraction": 0.05, "seed": 1},
            "output": {"uri": output, "fileFormat": file_format},
        }
    )
    started = time.perf_counter()
    summary = build_dataset(
        spec, name="bench", source_uris=[source], output_uri=output, storage=Storage()
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rollouts": summary.counts.input,
                "pairs": summary.counts.kept,
                "seconds": round(seconds, 2),
                "rollouts_per_second": round(summary.counts.input / seconds),
                "peak_rss_mb": round(peak_mb, 1),
                "max_open_groups": summary.max_open_groups,
                "dropped": summary.counts.dropped,
            }
        )
    )


def main() -> int:
    """Write (unless --keep finds it) and build; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=250_000)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--part-rows", type=int, default=5000)
    parser.add_argument("--file-format", choices=("jsonl", "parquet"), default="jsonl")
    parser.add_argument("--dir", help="Work directory (default: a temporary one, removed).")
    parser.add_argument(
        "--build-only", nargs=3, metavar=("SOURCE", "OUTPUT", "FORMAT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.build_only:
        build(*args.build_only)
        return 0
    work = Path(args.dir or tempfile.mkdtemp(prefix="dataset-bench-"))
    source, output = f"file://{work}/rollouts", f"file://{work}/dataset"
    started = time.perf_counter()
    if not (work / "rollouts" / "_SUCCESS").exists():
        write_source(source, args.tasks, args.repeats, args.shards, args.part_rows)
    print(f"wrote {args.tasks * args.repeats} rollouts in {time.perf_counter() - started:.1f}s")
    child = subprocess.run(
        [sys.executable, __file__, "--build-only", source, output, args.file_format],
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"built {figures['pairs']} DPO pairs from {figures['rollouts']} rollouts in"
        f" {figures['seconds']}s: {figures['rollouts_per_second']} rollouts/s,"
        f" peak RSS {figures['peak_rss_mb']} MB, max open groups {figures['max_open_groups']}"
    )
    print(json.dumps(figures))
    if not args.dir:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Viewer benchmark: `gymops view` over 1,000,000 rollouts on file://.

Phase 1 commits N tasks x 4 repeats of synthetic rollouts (three task types, 1% failures, 2%
truncated, 10% with a tool call) as zstd JSONL parts in 8 shards. Phase 2 starts `gymops view`
with an empty index cache and times the index build (until the overview reports it done).
Phase 3 starts a fresh `gymops view` on the same cache and times, from the process start, the
first full overview answer; then one rollouts-table page (failures, sorted by reward), a task
page, the overview again and a text search (which reads every part). RSS is read from /proc
for each viewer process.

    .venv/bin/python bench/viewer_bench.py                   # 250,000 tasks x 4 = 1,000,000
    .venv/bin/python bench/viewer_bench.py --tasks 10000     # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from gym_operator.data.synthetic import commit_rows, finish_job, rollout_row, start_job
from gym_operator.storage.store import Storage

REPEATS, SHARDS, PART_ROWS = 4, 8, 5000
TYPES = ("arithmetic", "algebra", "geometry")


def _row(rng: random.Random, task: int, rep: int, created: int) -> dict[str, Any]:
    text = f"Let me think step by step about problem {task}. " * 3 + f"The answer is {task + rep}."
    calls = None
    if task % 10 == 0:
        calls = [{"name": "calculator", "arguments": '{"expression": "6*7"}', "call_id": "c1"}]
    row = rollout_row(
        task,
        rep,
        text,
        rng.choice((0.0, 0.25, 0.5, 1.0)),
        truncated=rng.random() < 0.02,
        tool_calls=calls,
        expected_answer=str(task),
        task_type=TYPES[task % len(TYPES)],
    )
    row["response"]["created_at"] = created
    return row


def write_job(uri: str, tasks: int) -> None:
    """Commit tasks x REPEATS slots: rollouts, and failure rows for 1% of them."""
    storage = Storage()
    rng = random.Random(11)
    manifests = start_job(storage, uri, num_shards=SHARDS, num_repeats=REPEATS)
    start = int(time.time()) - 3600
    for shard in range(SHARDS):
        rows: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        for task in range(shard, tasks, SHARDS):
            for rep in range(REPEATS):
                if rng.random() < 0.01:
                    failure = {"class": "timeout", "message": "no answer in 600 s", "attempts": 3}
                    failures.append(
                        {"_ng_task_index": task, "_ng_rollout_index": rep, "failure": failure}
                    )
                else:
                    rows.append(_row(rng, task, rep, start + task * 3600 // tasks))
                if len(rows) >= PART_ROWS:
                    manifests[shard] = commit_rows(
                        storage, uri, manifests[shard], rows, failures=failures
                    )
                    rows, failures = [], []
        if rows or failures:
            manifests[shard] = commit_rows(storage, uri, manifests[shard], rows, failures=failures)
    finish_job(storage, uri, manifests)


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _get(url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as answer:
        body = json.loads(answer.read())
    return time.perf_counter() - started, body


class Viewer:
    """`gymops view` as a child process."""

    def __init__(self, uri: str, cache_dir: Path) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gym_operator.cli",
                "view",
                uri,
                "--port",
                "0",
                "--no-browser",
                "--cache-dir",
                str(cache_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            if found:
                self.url = found.group(1)
                return
        raise RuntimeError("gymops view printed no URL")

    def wait_overview(
        self, rows: int, indexed: bool, every: float = 0.05
    ) -> tuple[float, float, dict[str, Any]]:
        """(seconds since the process started, seconds of the last request, the overview) once
        the overview has `rows` rows."""
        while True:
            took, body = _get(self.url + "api/v/0/overview")
            done = body["counts"]["rows"] >= rows and not (indexed and body["status"]["indexing"])
            if done:
                return time.perf_counter() - self.started, took, body
            time.sleep(every)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=250_000)
    parser.add_argument("--dir", help="Keep the rollouts here (default: a temporary folder).")
    args = parser.parse_args(argv)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="viewer-bench-"))
    uri = f"file://{root / 'rollouts'}/"
    slots = args.tasks * REPEATS
    try:
        if not (root / "rollouts" / "_SUCCESS").exists():
            started = time.perf_counter()
            write_job(uri, args.tasks)
            print(f"wrote {slots:,} slots in {time.perf_counter() - started:.1f} s")
        cache_dir = root / "cache"
        shutil.rmtree(cache_dir, ignore_errors=True)

        first = Viewer(uri, cache_dir)
        build_s, _, _ = first.wait_overview(slots, indexed=True, every=1.0)  # as a page polls
        build_rss = _rss_mb(first.proc.pid)
        first.stop()

        second = Viewer(uri, cache_dir)
        open_s, request_s, overview = second.wait_overview(slots, indexed=False)
        table_s, table = _get(second.url + "api/v/0/rollouts?failure=any&sort=reward&order=desc")
        task_s, task = _get(second.url + f"api/v/0/task/{args.tasks // 2 + 1}")
        again_s, _ = _get(second.url + "api/v/0/overview")
        search_s, search = _get(second.url + "api/v/0/rollouts?q=calculator&task_type=algebra")
        rss = _rss_mb(second.proc.pid)
        second.stop()
        figures = {
            "rows": overview["counts"]["rows"],
            "failures": overview["counts"]["failures"],
            "index_build_s": round(build_s, 1),
            "index_build_rss_mb": [round(x) for x in build_rss],
            "first_overview_after_build_s": round(open_s, 2),
            "of_which_the_overview_request_s": round(request_s, 3),
            "table_page_s": round(table_s, 2),
            "table_rows_matched": table["total"],
            "task_page_s": round(task_s, 2),
            "task_repeats": len(task["repeats"]),
            "overview_again_s": round(again_s, 3),
            "text_search_s": round(search_s, 1),
            "text_search_matched": search["total"],
            "rss_mb_current_peak": [round(x) for x in rss],
        }
        figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
        print(json.dumps(figures, indent=2))
        ok = open_s < 2.0 and rss[1] < 300
        print("targets (overview < 2 s after the build, RSS < 300 MB):", "met" if ok else "MISSED")
        return 0 if ok else 1
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

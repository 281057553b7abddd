"""Start-up benchmark: wall time and peak RSS of `gymops run` on a 16-rollout regex job.

The stub model answers at once, so the wall time is mostly start-up (imports, spec, preflight)
and the process's end. With `--before DIR` (an older `operator/` tree) the two codes alternate,
in the same run, against the same stub; medians of `--rounds` runs each.

    .venv/bin/python bench/startup_bench.py --before /tmp/old/operator --rounds 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import Scenario, start_stub, write_inputs

OURS = Path(__file__).resolve().parent.parent / "operator"
SCENARIO = Scenario("startup", concurrency=16, latency=0.0, rollouts=16, repeats=1, local=True)


def one_run(tree: Path, url: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `gymops run` with `tree` on PYTHONPATH."""
    with tempfile.TemporaryDirectory(prefix="gymops-startup-") as tmp:
        spec = write_inputs(Path(tmp), SCENARIO, url, "http://127.0.0.1:9/v1")
        cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "gym_operator.cli"]
        cmd += ["--log-level", "WARNING", "run", str(spec), "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        started = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"gymops run failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older operator/ tree to compare")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    trees = {"this code": OURS} | ({"before": args.before} if args.before else {})
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
    stub, url = start_stub(SCENARIO)
    try:
        for round_ in range(args.rounds):
            order = list(trees.items()) if round_ % 2 == 0 else list(trees.items())[::-1]
            for label, tree in order:
                runs[label].append(one_run(tree, url))
    finally:
        stub.terminate()
        stub.wait(10)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for label, rows in runs.items():
        walls = [wall for wall, _ in rows]
        rss = statistics.median(peak for _, peak in rows)
        print(
            f"{label:>9}: wall median {statistics.median(walls):.2f} s "
            f"(min {min(walls):.2f}, max {max(walls):.2f}), peak RSS median {rss:.0f} MB, "
            f"{len(rows)} runs"
        )


if __name__ == "__main__":
    main()

"""Several replicas of one model (`policy.baseURLs`): four simulated GPU servers, one 3x slower.

Each replica is `gym_operator.testing.sim_gpu` (profile `kv-bound` by default) in its own process,
all pinned to core 0; the clients run on core 1. First each replica's capacity is measured alone
with the raw aiohttp client of `bench/run.py` (one fast replica, then the slow one, at
`--per-replica` requests in flight, where the profile is saturated). Then `gymops run` samples
from all four at once (concurrency 4 x per-replica, regex verifier in process). Rates are
completions per second counted at the servers between 10% and 90% of the requests (start-up
and tail excluded). Target: at least 0.9 of the sum of the four capacities (round robin would
get about 4 x the slow one's, 0.4 of it).

`--kill`: a fast replica is killed (SIGKILL) at half the run; the run must finish with no failure
rows (its requests in flight are sent again to the others).

    PYTHONPATH=$PWD/operator .venv/bin/python bench/replicas_bench.py
    PYTHONPATH=$PWD/operator .venv/bin/python bench/replicas_bench.py --kill
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

RUN_PY = str(Path(__file__).resolve().parent / "run.py")


def start_sim(profile: str, speed: float, seed: int) -> tuple[subprocess.Popen[str], str]:
    """A simulated server in its own process on core 0; returns it and its base URL (/v1)."""
    cmd = [common.PYTHON, "-m", "gym_operator.testing.sim_gpu", "--port", "0"]
    cmd += ["--profile", profile, "--speed", str(speed), "--seed", str(seed)]
    return common.start_server(common.pinned(cmd, 0))


def completed(url: str) -> int:
    """Requests the server has answered so far (-1 once it is gone)."""
    try:
        return int(common.server_stats(url)["completed"])
    except OSError:
        return -1


def watch(
    proc: subprocess.Popen[str],
    urls: list[str],
    total: int,
    on_half: object = None,
) -> float:
    """Wait for `proc`; the servers' completions per second between 10% and 90% of `total`.
    `on_half()` runs once when half are done. A server that disappears keeps its last count."""
    last = {url: 0 for url in urls}
    marks: dict[float, tuple[float, int]] = {}
    while proc.poll() is None:
        for url in urls:
            count = completed(url)
            if count >= 0:
                last[url] = count
        done, now = sum(last.values()), time.monotonic()
        for mark in (0.1, 0.5, 0.9):
            if mark not in marks and done >= mark * total:
                marks[mark] = (now, done)
                if mark == 0.5 and callable(on_half):
                    on_half()
        time.sleep(0.2)
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.args} exited {proc.returncode}")
    if 0.1 not in marks or 0.9 not in marks:
        raise RuntimeError("the run ended before its 10% and 90% marks were seen")
    (t1, n1), (t2, n2) = marks[0.1], marks[0.9]
    return (n2 - n1) / (t2 - t1)


def capacity(url: str, concurrency: int, requests: int) -> float:
    """One replica alone, saturated by the raw client: completions per second."""
    cmd = [common.PYTHON, RUN_PY, "--baseline-client", url, "--concurrency", str(concurrency)]
    cmd += ["--rollouts", str(requests)]
    proc = subprocess.Popen(common.pinned(cmd, 1), text=True)
    start = completed(url)
    rate = watch(proc, [url], requests + start)
    return rate


def main(argv: list[str] | None = None) -> int:
    """Capacities alone, then `gymops run` over all four; prints the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="kv-bound")
    parser.add_argument("--per-replica", type=int, default=128)
    parser.add_argument("--rollouts", type=int, default=8000)
    parser.add_argument("--capacity-requests", type=int, default=2000)
    parser.add_argument("--kill", action="store_true", help="SIGKILL a fast replica at 50%%")
    args = parser.parse_args(argv)
    sims = [start_sim(args.profile, speed, seed) for seed, speed in enumerate([1, 1, 1, 1 / 3])]
    urls = [url for _, url in sims]
    try:
        fast = capacity(urls[0], args.per_replica, args.capacity_requests)
        slow = capacity(urls[3], args.per_replica, args.capacity_requests // 3)
        print(f"capacity alone: fast {fast:.1f}/s, slow {slow:.1f}/s ({fast / slow:.2f}x)")
        ideal = 3 * fast + slow
        with tempfile.TemporaryDirectory(prefix="gymops-replicas-") as tmp:
            out = Path(tmp) / "out"
            spec = common.write_job(
                Path(tmp),
                "bench-replicas",
                args.rollouts // 4,
                {
                    "policy": {"baseURLs": urls, "model": "sim"},
                    "sampling": {"numRepeats": 4, "concurrency": 4 * args.per_replica},
                    "verifier": {"builtin": "regex", "config": {"pattern": "#### \\d+"}},
                    "output": {"uri": str(out), "partRows": 1000, "partSeconds": 1},
                    "retry": {**common.RETRY, "requestTimeoutSeconds": 300, "maxRetrySeconds": 900},
                },
            )
            cmd = common.pinned(common.run_cmd(spec), 1)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, text=True)
            before = sum(max(0, completed(url)) for url in urls)
            killed = sims[1][0]
            started = time.monotonic()
            rate = watch(
                proc,
                urls,
                args.rollouts + before,
                on_half=(lambda: killed.send_signal(signal.SIGKILL)) if args.kill else None,
            )
            wall = time.monotonic() - started
            failures = len(common.committed(out).failures)
            done = (out / "_SUCCESS").is_file()
        print(
            f"gymops run over 4 replicas: {rate:.1f}/s = {rate / ideal:.3f} of the sum of "
            f"capacities ({ideal:.1f}/s); wall {wall:.1f} s; failure rows {failures}; "
            f"_SUCCESS {'yes' if done else 'no'}"
            + ("; a fast replica killed at 50%" if args.kill else "")
        )
        print(f"load average at the end: {common.load_average()}")
    finally:
        common.stop(*(proc for proc, _ in sims))
    return 0


if __name__ == "__main__":
    sys.exit(main())

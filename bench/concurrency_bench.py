"""`sampling.concurrency: auto` against a sweep of fixed concurrencies on a simulated GPU server.

For each profile of gym_operator.testing.sim_gpu (run in a child process, as a model server is):
every fixed concurrency of the sweep and `auto` drive the server for `--seconds`, through the same
window classes the generator uses; throughput is counted after `--warmup` seconds. Prints each
run's rate, timeouts and final limit, and `auto` as a ratio of the best fixed rate measured in the
same run (target >= 0.95, and no timeouts where the largest fixed concurrency has them). Then two
`auto` clients share one server: their rates should be within 20% of each other.

    PYTHONPATH=$PWD/operator .venv/bin/python bench/concurrency_bench.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import common

from gym_operator.rollout.concurrency import make_window
from gym_operator.rollout.window import AimdWindow

BODY = {"model": "sim", "messages": [{"role": "user", "content": "What is 2 + 3?"}]}


@dataclass
class Run:
    """What one client did."""

    label: str
    done: int = 0
    timeouts: int = 0
    limit: float = 0.0
    rate: float = 0.0


@contextlib.contextmanager
def sim_server(profile: str) -> Iterator[str]:
    """The simulated server in a child process; yields its base URL."""
    cmd = [common.PYTHON, "-m", "gym_operator.testing.sim_gpu", "--profile", profile, "--port", "0"]
    proc, url = common.start_server(cmd)
    try:
        yield url
    finally:
        common.stop(proc)


async def drive(
    url: str, window: AimdWindow, run: Run, seconds: float, warmup: float, timeout: float
) -> Run:
    """Keep the window full of requests for `seconds`; count answers after `warmup`."""
    connector = aiohttp.TCPConnector(limit=0)
    start = time.perf_counter()
    stop_at, count_from = start + seconds, start + warmup

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < stop_at:
            await window.acquire()
            sent = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    async with session.post(f"{url}/chat/completions", json=BODY) as response:
                        body = await response.json()
            except TimeoutError:
                window.release()
                run.timeouts += 1
                continue
            window.release()
            finished = time.perf_counter()
            window.on_success(finished - sent, body["usage"]["completion_tokens"])
            if count_from <= finished <= stop_at:
                run.done += 1

    async with aiohttp.ClientSession(connector=connector) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(window.ceiling)]
        await asyncio.sleep(seconds)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    run.limit = window.limit
    run.rate = run.done / (seconds - warmup)
    return run


async def one(profile: str, label: str, args: argparse.Namespace) -> Run:
    """One client on a fresh server (requests a client abandoned would slow the next run)."""
    auto = label == "auto"
    ceiling = args.ceiling if auto else int(label)
    window = make_window(ceiling, auto, request_timeout=args.timeout)
    with sim_server(profile) as url:
        return await drive(url, window, Run(label), args.seconds, args.warmup, args.timeout)


async def profile_sweep(profile: str, args: argparse.Namespace) -> None:
    runs = [await one(profile, str(c), args) for c in args.sweep]
    auto = await one(profile, "auto", args)
    for run in [*runs, auto]:
        print(
            f"  {profile:12} c={run.label:>5}: {run.rate:7.1f}/s  timeouts {run.timeouts:4}"
            f"  final limit {run.limit:6.0f}"
        )
    best = max(runs, key=lambda r: r.rate)
    largest = runs[-1]
    print(
        f"{profile}: auto {auto.rate:.1f}/s = {auto.rate / best.rate:.3f} of the best fixed "
        f"(c={best.label}, {best.rate:.1f}/s); timeouts auto {auto.timeouts}, "
        f"c={largest.label} {largest.timeouts}"
    )


async def two_jobs(profile: str, args: argparse.Namespace) -> None:
    with sim_server(profile) as url:
        a, b = await asyncio.gather(
            *(
                drive(
                    url,
                    make_window(args.ceiling, True, request_timeout=args.timeout),
                    Run(name),
                    args.seconds * 2,
                    args.warmup * 2,
                    args.timeout,
                )
                for name in ("A", "B")
            )
        )
    share = min(a.rate, b.rate) / max(a.rate, b.rate)
    print(
        f"{profile}: two auto jobs on one server: {a.rate:.1f}/s and {b.rate:.1f}/s "
        f"(limits {a.limit:.0f}, {b.limit:.0f}); smaller/larger {share:.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", nargs="+", default=["kv-bound", "batch-bound", "long-tail"])
    parser.add_argument("--sweep", nargs="+", type=int, default=[32, 64, 128, 256, 512, 1024])
    parser.add_argument("--ceiling", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    for profile in args.profiles:
        if not args.skip_sweep:
            asyncio.run(profile_sweep(profile, args))
    asyncio.run(two_jobs(args.profiles[0], args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

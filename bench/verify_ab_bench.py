"""A/B throughput of `gymops verify-server --verifier math` from two checkouts, interleaved.

Usage: .venv/bin/python bench/verify_ab_bench.py --baseline /work/main [--rounds 8]

Starts the verifier server of this checkout and of `--baseline` (each with its own PYTHONPATH,
`--workers` each), then sends the same requests (verify_bench's cases: every task its own
reference, boxed, `####` and wrong answers) to one and then the other, round after round, the
order alternating, so both see the same load drift of a shared machine. Prints each round's
rate, the ratio of the totals (this checkout / baseline), and the ratio of the verifications per
CPU second of each server's process tree (server + workers), which other jobs on the machine do
not move.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from verify_bench import JSON, make_cases, response_of, tree_cpu_seconds, wait_healthy

from gym_operator.testing.loopback import free_port

HERE = Path(__file__).resolve().parent.parent


async def drive(session: aiohttp.ClientSession, url: str, bodies: list[bytes], width: int) -> float:
    """Seconds to verify all bodies with `width` requests in flight."""
    queue = list(bodies)

    async def worker() -> None:
        while queue:
            body = queue.pop()
            async with session.post(f"{url}/verify", data=body, headers=JSON) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"verify answered {resp.status}: {await resp.text()}")
                await resp.read()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    return time.perf_counter() - started


def start(tree: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """The math verifier server of the checkout `tree` on a free loopback port."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree / "operator")}
    command = [sys.executable, "-m", "gym_operator.cli", "--log-level", "WARNING"]
    command += ["verify-server", "--verifier", "math", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=env, cwd=tree), f"http://127.0.0.1:{port}"


def bodies_of(count: int, start_at: int) -> list[bytes]:
    """/verify bodies of verify_bench's cases."""
    cases = make_cases(count, start=start_at)
    return [json.dumps({**task, "response": response_of(text)}).encode() for task, text in cases]


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Wall-clock and process-tree CPU seconds per checkout over all rounds."""
    trees = {"this": HERE, "baseline": Path(args.baseline).resolve()}
    servers = {name: start(tree, args.workers) for name, tree in trees.items()}
    spent = dict.fromkeys(trees, 0.0)
    cpu = dict.fromkeys(trees, 0.0)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            for _, url in servers.values():
                await wait_healthy(session, url, 300)
                await drive(session, url, bodies_of(200, 10**7), args.concurrency)
            for index in range(args.rounds):
                bodies = bodies_of(args.per_round, index * args.per_round)
                order = list(trees) if index % 2 == 0 else list(reversed(trees))
                for name in order:
                    process, url = servers[name]
                    before = sum(tree_cpu_seconds(process.pid).values())
                    took = await drive(session, url, bodies, args.concurrency)
                    cpu[name] += sum(tree_cpu_seconds(process.pid).values()) - before
                    spent[name] += took
                    load = os.getloadavg()[0]
                    print(f"round {index} {name:8s} {len(bodies) / took:7.1f}/s  load {load:.1f}")
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
    return {**{f"wall {n}": s for n, s in spent.items()}, **{f"cpu {n}": c for n, c in cpu.items()}}


def main() -> int:
    """Run the rounds and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", required=True, help="Another checkout (e.g. /work/main).")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    seconds = asyncio.run(run(args))
    total = args.rounds * args.per_round
    for name in ("this", "baseline"):
        wall, cpu = total / seconds[f"wall {name}"], total / seconds[f"cpu {name}"]
        print(
            f"{name:8s} {wall:7.1f} verifications/s, {cpu:7.1f} per CPU second ({total} requests)"
        )
    wall_ratio = seconds["wall baseline"] / seconds["wall this"]
    cpu_ratio = seconds["cpu baseline"] / seconds["cpu this"]
    print(f"ratio this / baseline: {wall_ratio:.3f} wall clock, {cpu_ratio:.3f} per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Math verifications per second: through the verifier server vs one in-process call x cores.

Usage: .venv/bin/python bench/verify_bench.py [--requests 10000] [--concurrency 64] [--workers N]

Starts `gymops verify-server --verifier math` as a separate process on loopback, drives it with
a concurrent aiohttp client, and compares its rate with the rate of calling the math check in
this process (single-threaded, measured before and after the server run) multiplied by the
number of workers. Prints both and the ratio, and the same comparison per CPU second (server
process tree vs in-process), which does not depend on what else the machine is running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import aiohttp

from gym_operator.testing.loopback import free_port
from gym_operator.verify.base import get_verifier

JSON = {"Content-Type": "application/json"}
ANSWER_FORMS = (
    "So the answer is \\boxed{{{n}/7}}.",
    "We get $\\frac{{{n}}}{{7}}$, i.e. \\boxed{{\\frac{{{n}}}{{7}}}}.",
    "Working step by step... #### {n}/7",
    "The result is \\boxed{{{wrong}}}.",
)


def make_cases(count: int, start: int = 0) -> list[tuple[dict[str, Any], str]]:
    """(task, response text) pairs, each with its own reference, in several answer forms."""
    cases = []
    for i in range(start, start + count):
        n = i + 1
        text = ANSWER_FORMS[i % len(ANSWER_FORMS)].format(n=n, wrong=n + 1)
        cases.append(({"expected_answer": f"\\frac{{{n}}}{{7}}", "id": i}, text))
    return cases


def response_of(text: str) -> dict[str, Any]:
    """A Responses-API response holding `text`."""
    content = [{"type": "output_text", "text": text}]
    return {"output": [{"type": "message", "role": "assistant", "content": content}]}


def in_process_rate(cases: list[tuple[dict[str, Any], str]]) -> tuple[float, float]:
    """(checks per second, checks per CPU second) of the math check called directly."""
    check = get_verifier("math")
    check(*cases[0], {})
    started, cpu_started = time.perf_counter(), time.process_time()
    for task, text in cases:
        check(task, text, {})  # type: ignore[call-arg]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return len(cases) / wall, len(cases) / cpu


def _check_chunk(cases: list[tuple[dict[str, Any], str]]) -> int:
    check = get_verifier("math")
    for task, text in cases:
        check(task, text, {})  # type: ignore[call-arg]
    return len(cases)


def parallel_in_process_rate(cases: list[tuple[dict[str, Any], str]], workers: int) -> float:
    """Checks per second of `workers` processes each calling the check on its share, no HTTP."""
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        list(pool.map(_check_chunk, [cases[:1]] * workers))
        chunks = [cases[i::workers] for i in range(workers)]
        started = time.perf_counter()
        done = sum(pool.map(_check_chunk, chunks))
        return done / (time.perf_counter() - started)


def tree_cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + system) of `root` and its live descendants, by role, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    roles = {"server": cpu.get(root, 0.0), "workers": 0.0}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                roles["workers"] += cpu[pid]
                frontier.append(pid)
    return roles


async def wait_healthy(session: aiohttp.ClientSession, url: str, seconds: float = 60) -> None:
    """Poll /health until the server answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("verifier server did not become healthy")


async def server_rate(
    url: str, pid: int, cases: list[tuple[dict[str, Any], str]], concurrency: int
) -> tuple[float, dict[str, float]]:
    """(verifications per second, CPU seconds by role) with `concurrency` requests in flight."""
    bodies = [json.dumps({**task, "response": response_of(text)}).encode() for task, text in cases]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_healthy(session, url)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(f"{url}/verify", data=body, headers=JSON) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"verify answered {resp.status}: {await resp.text()}")
                    await resp.read()

        for body in bodies[: concurrency * 2]:
            async with session.post(f"{url}/verify", data=body, headers=JSON) as resp:
                await resp.read()
        cpu_before, client_before = tree_cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        cpu_after = tree_cpu_seconds(pid)
        cpu = {role: cpu_after[role] - cpu_before[role] for role in cpu_after}
        cpu["client"] = time.process_time() - client_before
        return len(bodies) / wall, cpu


def main() -> int:
    """Run both measurements and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cases = make_cases(args.requests)
    before = in_process_rate(cases)
    parallel = parallel_in_process_rate(
        make_cases(args.requests, start=2 * args.requests), args.workers
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gym_operator.cli", "--log-level", "WARNING", "verify-server"]
        + ["--verifier", "math", "--host", "127.0.0.1", "--port", str(port)]
        + ["--workers", str(args.workers)],
    )
    try:
        served, cpu = asyncio.run(
            server_rate(f"http://127.0.0.1:{port}", server.pid, cases, args.concurrency)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    after = in_process_rate(make_cases(args.requests, start=args.requests))
    # the in-process rate is measured before and after the server run (machine load drifts)
    single, single_per_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    ideal = single * args.workers
    print(f"in-process single call: {single:8.1f} checks/s")
    print(f"x {args.workers} workers (ideal):  {ideal:8.1f} checks/s")
    print(f"through the server:     {served:8.1f} verifications/s")
    print(f"ratio server / ideal:   {served / ideal:8.2f}  (target >= 0.70; wall clock)")
    print(f"{args.workers} in-process loops at once: {parallel:8.1f} checks/s (no HTTP, same load)")
    print(f"ratio server / parallel loops: {served / parallel:.2f}")
    server_cpu = cpu["server"] + cpu["workers"]
    print(
        "CPU seconds: server {server:.2f}, workers {workers:.2f}, client {client:.2f}".format(**cpu)
    )
    per_cpu = args.requests / server_cpu
    print(f"per CPU second: in-process {single_per_cpu:.1f}, server (process tree) {per_cpu:.1f}")
    print(f"CPU efficiency server / in-process: {per_cpu / single_per_cpu:.2f}  (load-independent)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

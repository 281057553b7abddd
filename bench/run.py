"""Rollout throughput benchmark: `gymops generate` against the stub model, beside a raw client.

For each scenario: start the stub model (`gym_operator.testing.stub_model`) in its own process,
pinned to core 0 when the machine has two or more; run a minimal raw aiohttp client (the
baseline: can the stub serve this at all?) and then `gymops generate` (pinned to core 1) over the
same number of rollouts. Verification is a second stub process's `/verify` (a substring check,
pinned beside the generator so the model stub's core serves only the model): it costs the
generator one HTTP round trip per rollout, as a real verifier would, and almost no CPU.

Reported per run: rollouts/s during the run (first request to last answer, so process start-up
is excluded), the same from the second request (`steady r/s`: `gymops run` sends one trial
rollout, its preflight, and waits for it before the rest) and from 10% to 90% of the answers
(`mid r/s`: without the start and the tail, which with lognormal latency is a few draws),
fraction of ideal (concurrency / mean latency), client CPU ms per rollout during the run, peak
RSS, max requests in flight at the stub, time from 99% to 100%, wall time with start-up. Local
scenarios end with gymops against the raw client run just before it (issue 13: >= 0.95 of its
throughput, <= 2x its CPU per rollout).

    .venv/bin/python bench/run.py                      # every scenario of issue 7 (S4 at 1,000,000)
    .venv/bin/python bench/run.py --quick              # the same, S4 at 100,000 and S3-long shorter
    .venv/bin/python bench/run.py --scenario S1-256,S3 # some of them
    .venv/bin/python bench/run.py --scenario L1-256,L2 --before /tmp/old/operator  # and older code
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import common
import psutil


@dataclass
class Scenario:
    """One benchmark setting."""

    name: str
    concurrency: int
    latency: float
    rollouts: int
    stub_args: list[str] = field(default_factory=list)
    repeats: int = 4
    note: str = ""
    local: bool = False
    """`gymops run` with a built-in verifier (regex: called in process), not `generate`."""
    builtin: str = "regex"
    """The local scenarios' verifier: regex, or math (in the verifier child, over its pipes)."""


SCENARIOS = {
    "S1-256": Scenario("S1-256", 256, 0.5, 4000, note="500 ms fixed"),
    "S1-64": Scenario("S1-64", 64, 0.5, 4000, note="500 ms fixed"),
    "S2": Scenario(
        "S2",
        64,
        0.5,
        4000,
        ["--latency-dist", "lognormal", "--sigma", "1"],
        note="lognormal sigma 1, mean 500 ms",
    ),
    "S4": Scenario(
        "S4", 512, 0.05, 1_000_000, note="50 ms fixed, memory must stay flat", repeats=4
    ),
    "S3": Scenario(
        "S3",
        256,
        0.5,
        4000,
        ["--rate-429", "0.05", "--retry-after", "2"],
        note="5% 429 with Retry-After 2 s",
    ),
    "S3-long": Scenario(
        "S3-long",
        256,
        0.5,
        40_000,
        ["--rate-429", "0.05", "--retry-after", "2"],
        note="5% 429 with Retry-After 2 s, long enough that the 2 s tail is not the whole story",
    ),
}
SCENARIOS["L1-256"] = replace(SCENARIOS["S1-256"], name="L1-256", local=True)
SCENARIOS["L2"] = replace(SCENARIOS["S2"], name="L2", local=True)
SCENARIOS["L3-math"] = replace(
    SCENARIOS["S1-64"], name="L3-math", local=True, builtin="math", note="500 ms fixed, math"
)
ALL = ["S1-256", "S1-64", "S2", "S3", "S3-long", "S4", "S5", "L1-256", "L2", "L3-math"]
LOCAL_VERIFIERS = {
    "regex": {"builtin": "regex", "config": {"pattern": "#### \\d+"}},
    "math": {"builtin": "math"},
}
QUICK_ROLLOUTS = {"S4": 100_000, "S3-long": 16_000}
BEFORE = "gymops before"


def start_stub(scenario: Scenario | None, core: int = 0) -> tuple[subprocess.Popen[str], str]:
    """A stub in its own process (None: no latency, as the verifier); returns it and its URL."""
    if scenario is None:
        return common.start_stub(None, core=core)
    return common.start_stub(scenario.latency, scenario.stub_args, core)


def write_inputs(
    workdir: Path, scenario: Scenario, stub_url: str, verifier_url: str, part_rows: int = 1000
) -> Path:
    """Tasks and the RolloutJob spec of the run."""
    verifier = (
        LOCAL_VERIFIERS[scenario.builtin]
        if scenario.local
        else {"url": verifier_url.removesuffix("/v1")}
    )
    return common.write_job(
        workdir,
        f"bench-{scenario.name.lower()}",
        scenario.rollouts // scenario.repeats,
        {
            "policy": {"baseURL": stub_url, "model": "stub"},
            "sampling": {"numRepeats": scenario.repeats, "concurrency": scenario.concurrency},
            "verifier": verifier,
            "output": {"uri": str(workdir / "out"), "partRows": part_rows, "partSeconds": 1},
            "retry": common.RETRY,
        },
    )


@dataclass
class Measured:
    """One client run."""

    client: str
    scenario: Scenario
    rollouts: int
    run_seconds: float
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    max_in_flight: int
    mean_in_flight: float
    tail_seconds: float | None
    steady_seconds: float
    """From the second request to the last answer (a preflight's lone request excluded)."""
    mid_seconds: float | None
    """From 10% to 90% of the answers (no start, no tail: lognormal tails vary run to run)."""
    rss_at_20_mb: float | None = None
    rss_at_90_mb: float | None = None

    @property
    def rate(self) -> float:
        """Rollouts per second between the first request and the last answer."""
        return self.rollouts / self.run_seconds

    @property
    def steady_rate(self) -> float:
        """Rollouts per second from the second request to the last answer."""
        return self.rollouts / self.steady_seconds

    @property
    def mid_rate(self) -> float | None:
        """Answers per second between 10% and 90% of them."""
        return 0.8 * self.rollouts / self.mid_seconds if self.mid_seconds else None

    @property
    def fraction(self) -> float:
        """Rate over the ideal, concurrency / mean latency."""
        return self.rate / (self.scenario.concurrency / self.scenario.latency)


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process and its live descendants (the local verifier server)."""
    total = 0.0
    for each in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def measure(
    client: str,
    cmd: list[str],
    scenario: Scenario,
    stub_url: str,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run a client process to its end against a fresh stub; CPU and RSS from its own rusage
    (which includes the children it waited for: `gymops run`'s verifier server)."""
    total = scenario.rollouts
    started = time.time()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    watcher = psutil.Process(proc.pid)
    cpu_at_first = None
    second = None
    answered_at: dict[float, float] = {}
    t99 = None
    rss: dict[float, float] = {}
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        stats = common.server_stats(stub_url)
        if cpu_at_first is None and stats["requests"] > 0:
            cpu_at_first = tree_cpu(watcher)
        if second is None and stats["requests"] >= 2:
            second = time.time()
        for mark in (0.1, 0.9):
            if mark not in answered_at and stats["requests"] - stats["in_flight"] >= mark * total:
                answered_at[mark] = time.time()
        if t99 is None and stats["requests"] >= 0.99 * total:
            t99 = time.time()
        for mark in (0.2, 0.9):
            if mark not in rss and stats["requests"] >= mark * total:
                with contextlib.suppress(psutil.Error):
                    rss[mark] = watcher.memory_info().rss / 2**20
        time.sleep(0.05 if second else 0.002)  # the second request within a few ms
    proc.returncode = os.waitstatus_to_exitcode(status)
    ended = time.time()
    if proc.returncode != 0:
        stderr = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{client} exited {proc.returncode}:\n{stderr[-3000:]}")
    stats = common.server_stats(stub_url)
    run = stats["last_answer"] - stats["first_request"]
    return Measured(
        client=client,
        scenario=scenario,
        rollouts=total,
        run_seconds=run,
        wall_seconds=ended - started,
        cpu_seconds=usage.ru_utime + usage.ru_stime - (cpu_at_first or 0.0),
        peak_rss_mb=usage.ru_maxrss / 1024,
        max_in_flight=stats["max_in_flight"],
        mean_in_flight=stats["in_flight_seconds"] / run,
        tail_seconds=stats["last_answer"] - t99 if t99 else None,
        steady_seconds=stats["last_answer"] - max(second or 0.0, stats["first_request"]),
        mid_seconds=answered_at[0.9] - answered_at[0.1] if len(answered_at) == 2 else None,
        rss_at_20_mb=rss.get(0.2),
        rss_at_90_mb=rss.get(0.9),
    )


async def baseline_client(url: str, concurrency: int, requests: int) -> None:
    """A minimal raw aiohttp client: `concurrency` workers posting chat completions."""
    import aiohttp

    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for i in remaining:
                body = {
                    "model": "stub",
                    "seed": i % 4,
                    "messages": [{"role": "user", "content": f"What is {i} + {i + 1}?"}],
                }
                while True:
                    async with session.post(f"{url}/chat/completions", json=body) as resp:
                        await resp.read()
                        if resp.status == 200:
                            break
                        await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def run_scenario(scenario: Scenario, before: Path | None = None) -> list[Measured]:
    """Baseline, then gymops generate (or run), each against a fresh stub; with `before`, then
    `gymops run` once more with that `operator/` tree on PYTHONPATH ("gymops before")."""
    results = []
    verifier, verifier_url = start_stub(None, core=1)
    ours = "gymops run" if scenario.local else "gymops generate"
    clients = ["raw aiohttp", ours]
    if before is not None and scenario.local:
        clients.append(BEFORE)
    for client in clients:
        stub, url = start_stub(scenario)
        try:
            with tempfile.TemporaryDirectory(prefix="gymops-bench-") as tmp:
                if client == "raw aiohttp":
                    cmd = [common.PYTHON, __file__, "--baseline-client", url]
                    cmd += ["--concurrency", str(scenario.concurrency)]
                    cmd += ["--rollouts", str(scenario.rollouts)]
                else:
                    spec = write_inputs(Path(tmp), scenario, url, verifier_url)
                    generate = client == "gymops generate"
                    cmd = common.generate_cmd(spec) if generate else common.run_cmd(spec)
                env = None
                if client == BEFORE:
                    env = {**os.environ, "PYTHONPATH": str(before)}
                results.append(measure(client, common.pinned(cmd, 1), scenario, url, env))
                print_row(results[-1])
        finally:
            common.stop(stub)
    common.stop(verifier)
    return results


def run_kill_scenario(scenario: Scenario) -> str:
    """S5: SIGKILL `gymops generate` at 50%, restart; count lost, duplicated and re-sent."""
    from gym_operator.storage.manifest import read_manifest
    from gym_operator.storage.store import Storage
    from gym_operator.storage.uri import parse_uri

    verifier, verifier_url = start_stub(None, core=1)
    stub, url = start_stub(scenario)
    try:
        with tempfile.TemporaryDirectory(prefix="gymops-bench-") as tmp:
            spec = write_inputs(Path(tmp), scenario, url, verifier_url, part_rows=64)
            cmd = common.pinned(common.generate_cmd(spec), 1)
            proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
            while common.server_stats(url)["requests"] < scenario.rollouts / 2:
                time.sleep(0.01)
            proc.kill()
            proc.wait()
            at_kill = common.server_stats(url)
            prefix = parse_uri(str(Path(tmp) / "out"))
            manifest = read_manifest(Storage(), prefix, 0)
            committed = manifest.completed if manifest else 0
            answered = at_kill["requests"] - at_kill["in_flight"]
            uncommitted = answered - committed
            restart = subprocess.run(cmd, stderr=subprocess.DEVNULL, check=False)
            final = common.server_stats(url)
            out = common.committed(Path(tmp) / "out")
            keys = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts]
    finally:
        common.stop(stub, verifier)
    resent = final["requests"] - scenario.rollouts
    in_flight = at_kill["in_flight"]
    verdict = "met" if resent <= in_flight else "not met"
    line = (
        f"S5 (SIGKILL at 50%, restart; concurrency {scenario.concurrency}, partRows 64): "
        f"restart exit {restart.returncode}; rollouts {len(keys)}/{scenario.rollouts}, "
        f"lost {scenario.rollouts - len(set(keys))}, duplicated {len(keys) - len(set(keys))}; "
        f"re-sent requests {resent}; at the kill: in flight {in_flight}, answered but not yet "
        f"committed {uncommitted} (sum {in_flight + uncommitted}); "
        f"target re-sent <= in flight: {verdict}"
    )
    print(line, flush=True)
    return line


HEADER = (
    f"{'scenario':<8} {'client':<16} {'rollouts':>8} {'rollouts/s':>10} {'steady r/s':>10} "
    f"{'mid r/s':>8} {'of ideal':>8} "
    f"{'CPU ms/r':>8} {'peak RSS':>9} {'max infl':>8} {'mean infl':>9} {'99->100%':>8} "
    f"{'wall':>7} {'RSS@20%':>8} {'RSS@90%':>8}"
)


def print_row(m: Measured) -> None:
    """One line of the table."""
    tail = f"{m.tail_seconds:.2f}s" if m.tail_seconds is not None else "-"
    rss20 = f"{m.rss_at_20_mb:.0f}MB" if m.rss_at_20_mb else "-"
    rss90 = f"{m.rss_at_90_mb:.0f}MB" if m.rss_at_90_mb else "-"
    mid = f"{m.mid_rate:.1f}" if m.mid_rate else "-"
    print(
        f"{m.scenario.name:<8} {m.client:<16} {m.rollouts:>8} {m.rate:>10.1f} "
        f"{m.steady_rate:>10.1f} {mid:>8} {m.fraction:>8.3f} "
        f"{1000 * m.cpu_seconds / m.rollouts:>8.3f} {m.peak_rss_mb:>7.0f}MB {m.max_in_flight:>8} "
        f"{m.mean_in_flight:>9.1f} {tail:>8} {m.wall_seconds:>6.1f}s "
        f"{rss20:>8} {rss90:>8}",
        flush=True,
    )


def local_ratios(rows: list[Measured]) -> list[str]:
    """Each `gymops run` against the raw client run just before it, with issue 13's targets."""
    lines = []
    raw = None
    for ours in rows:
        if ours.client == "raw aiohttp":
            raw = ours
        if raw is None or not ours.scenario.local or ours.client == raw.client:
            continue
        rate, steady = ours.rate / raw.rate, ours.steady_rate / raw.steady_rate
        mid = ours.mid_rate / raw.mid_rate if ours.mid_rate and raw.mid_rate else float("nan")
        cpu = ours.cpu_seconds / raw.cpu_seconds
        lines.append(
            f"{ours.scenario.name} {ours.client} / raw client: throughput {rate:.3f} whole run, "
            f"{steady:.3f} from the second request, {mid:.3f} from 10% to 90% of the answers "
            f"(target >= 0.95); CPU per rollout {cpu:.2f}x (target <= 2)"
        )
    return lines


def print_table(rows: list[Measured], notes: list[str]) -> None:
    """Every run, then the scenario notes, S3 against the no-fault time, and S5."""
    print()
    print(HEADER)
    for row in rows:
        print_row(row)
    print()
    for scenario in {r.scenario.name: r.scenario for r in rows}.values():
        ideal = scenario.concurrency / scenario.latency
        print(
            f"{scenario.name}: concurrency {scenario.concurrency}, {scenario.note}, "
            f"ideal {ideal:.0f} rollouts/s"
        )
    no_fault = {r.client: r.rate for r in rows if r.scenario.name == "S1-256"}
    for row in rows:
        if row.scenario.name.startswith("S3") and row.client in no_fault:
            expected = row.rollouts / no_fault[row.client]
            print(
                f"{row.scenario.name} {row.client}: {row.run_seconds:.1f} s = "
                f"{row.run_seconds / expected:.2f} x the no-fault time ({expected:.1f} s at the "
                f"S1-256 rate of the same client; target <= 1.3)"
            )
    for line in local_ratios(rows):
        print(line)
    for note in notes:
        print(note)
    print(f"load average at the end: {common.load_average()}")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--scenario", default="all", help=f"comma-separated, of {ALL}, or all (the default)"
    )
    parser.add_argument("--rollouts", type=int, help="override every scenario's rollout count")
    parser.add_argument(
        "--quick", action="store_true", help=f"smaller runs of the long scenarios: {QUICK_ROLLOUTS}"
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="local scenarios also run `gymops run` from this operator/ tree (an older commit's: "
        "git archive COMMIT operator/ | tar -x -C TMP, then TMP/operator)",
    )
    parser.add_argument("--baseline-client", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=256, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_client:
        asyncio.run(baseline_client(args.baseline_client, args.concurrency, args.rollouts))
        return 0
    names = ALL if args.scenario == "all" else args.scenario.split(",")
    load = common.load_average()
    print(f"cores: {common.cores()}  python: {sys.version.split()[0]}  load average: {load}")
    print(HEADER, flush=True)
    rows: list[Measured] = []
    notes: list[str] = []
    for name in names:
        scenario = replace(SCENARIOS["S1-256"] if name == "S5" else SCENARIOS[name])
        if args.quick and name in QUICK_ROLLOUTS:
            scenario.rollouts = QUICK_ROLLOUTS[name]
        if args.rollouts:
            scenario.rollouts = args.rollouts
        if name == "S5":
            notes.append(run_kill_scenario(scenario))
        else:
            rows.extend(run_scenario(scenario, args.before))
    print_table(rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

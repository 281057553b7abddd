"""Set-up the benches share: pinned server processes, stub counters, a job's tasks and spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from gym_operator.rollout.output import CommittedOutput

PYTHON = sys.executable
GYMOPS = [PYTHON, "-m", "gym_operator.cli", "--log-level", "WARNING"]
RETRY = {"maxAttempts": 10, "requestTimeoutSeconds": 60, "maxRetrySeconds": 600}
"""The benches' retry settings: generous, so that no rollout fails under load."""


def cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0))


def pinned(cmd: list[str], core: int) -> list[str]:
    """Prefix `taskset -c core` when there are at least two cores."""
    return ["taskset", "-c", str(core), *cmd] if cores() >= 2 else cmd


def start_server(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    """A server process that prints its base URL first; returns it and the URL."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"{' '.join(cmd)} did not start: {url!r}")
    return proc, url


def start_stub(
    latency: float | None, args: Sequence[str] = (), core: int = 0
) -> tuple[subprocess.Popen[str], str]:
    """The stub model in its own process on `core` (no latency: as a /verify server)."""
    extra = ["--latency", str(latency)] if latency else []
    cmd = [PYTHON, "-m", "gym_operator.testing.stub_model", "--port", "0", *extra, *args]
    return start_server(pinned(cmd, core))


def stop(*procs: subprocess.Popen[str]) -> None:
    """Terminate each process still running and wait for it."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


def server_stats(url: str) -> dict[str, Any]:
    """A loopback server's counters (`GET /stats` beside its /v1)."""
    with urllib.request.urlopen(f"{url.removesuffix('/v1')}/stats", timeout=5) as answer:
        return dict(json.loads(answer.read()))


def write_job(workdir: Path, name: str, tasks: int, spec: dict[str, Any]) -> Path:
    """`tasks` sums to work out in workdir/tasks.jsonl (with their expected answers) and a
    RolloutJob `name` reading them, whose other spec fields (policy, sampling, ...) are `spec`."""
    path = workdir / "tasks.jsonl"
    with path.open("w") as fh:
        for i in range(tasks):
            prompt = [{"role": "user", "content": f"What is {i} + {i + 1}?"}]
            row = {"responses_create_params": {"input": prompt}, "expected_answer": str(2 * i + 1)}
            fh.write(json.dumps(row) + "\n")
    job = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "RolloutJob",
        "metadata": {"name": name},
        "spec": {"input": {"uri": str(path)}, **spec},
    }
    out = workdir / "job.yaml"
    out.write_text(yaml.safe_dump(job))
    return out


def generate_cmd(spec: Path) -> list[str]:
    """`gymops generate` of the whole job as one shard."""
    return [*GYMOPS, "generate", "--spec", str(spec), "--shard", "0/1"]


def run_cmd(spec: Path) -> list[str]:
    """`gymops run` of the job, without the progress display."""
    return [*GYMOPS, "run", str(spec), "--no-progress"]


def committed(out: Path) -> CommittedOutput:
    """What is committed under a file:// output prefix (rollouts and failures)."""
    from gym_operator.rollout.output import read_committed
    from gym_operator.storage.store import Storage
    from gym_operator.storage.uri import parse_uri

    return read_committed(Storage(), parse_uri(str(out)))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())

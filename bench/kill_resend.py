"""S5 with the commit defaults: SIGKILL `gymops generate` at 50%, restart, count what is re-sent.

A model request is re-sent after a kill when its answer had not been committed: it was in
flight, or answered but still in the part buffer (or being verified). The buffer is committed
every `output.partRows` rows or `output.partSeconds`, so at a rate below partRows / partSeconds
it holds up to partSeconds of answers. Each setting runs against a fresh stub model (fixed
latency) with an instant verifier (the stub's /verify); the model rate is kept low enough that
partSeconds, not partRows, decides when parts are committed. Reported per setting: re-sent
requests against in flight at the kill plus 5 s of answers (the target), lost and duplicated
rows (both must be 0), and the storage writes a commit costs, scaled to 1,000,000 rollouts.

    .venv/bin/python bench/kill_resend.py            # the default, then 30 s (the old default)
    .venv/bin/python bench/kill_resend.py --part-seconds default
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

PYTHON = sys.executable
TARGET_SECONDS = 5.0


def pinned(cmd: list[str], core: int) -> list[str]:
    """Prefix `taskset -c core` when there are at least two cores."""
    return ["taskset", "-c", str(core), *cmd] if len(os.sched_getaffinity(0)) >= 2 else cmd


def start_stub(latency: float | None) -> tuple[subprocess.Popen[str], str]:
    """The stub model in its own process (None: no latency, as the verifier)."""
    args = ["--latency", str(latency)] if latency else []
    cmd = pinned([PYTHON, "-m", "gym_operator.testing.stub_model", "--port", "0", *args], 0)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"stub did not start: {url!r}")
    return proc, url


def stats(url: str) -> dict:
    """The stub's counters."""
    with urllib.request.urlopen(f"{url.removesuffix('/v1')}/stats", timeout=5) as answer:
        return json.loads(answer.read())


def write_job(
    workdir: Path, rollouts: int, concurrency: int, url: str, verifier: str, part_seconds: str
) -> Path:
    """Tasks and the spec (`part_seconds` "default": the field is left out)."""
    tasks = workdir / "tasks.jsonl"
    with tasks.open("w") as fh:
        for i in range(rollouts // 4):
            row = {
                "responses_create_params": {
                    "input": [{"role": "user", "content": f"What is {i} + {i + 1}?"}]
                },
                "expected_answer": str(2 * i + 1),
            }
            fh.write(json.dumps(row) + "\n")
    output: dict[str, object] = {"uri": str(workdir / "out")}
    if part_seconds != "default":
        output["partSeconds"] = float(part_seconds)
    spec = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "RolloutJob",
        "metadata": {"name": "bench-kill"},
        "spec": {
            "input": {"uri": str(tasks)},
            "policy": {"baseURL": url, "model": "stub"},
            "sampling": {"numRepeats": 4, "concurrency": concurrency},
            "verifier": {"url": verifier.removesuffix("/v1")},
            "output": output,
            "retry": {"maxAttempts": 10, "requestTimeoutSeconds": 60, "maxRetrySeconds": 600},
        },
    }
    path = workdir / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def storage_writes(prefix: Path) -> int:
    """Objects written under the output prefix (each one PUT on S3), manifest rewrites included:
    one manifest write per part, plus the finishing write."""
    shard = prefix / "shard-00000"
    files = [p for p in shard.iterdir() if p.name != "_manifest.json"]
    manifest = json.loads((shard / "_manifest.json").read_text())
    parts = len(manifest["parts"]) + sum(s["count"] for s in manifest.get("segments", []))
    return len(files) + parts + 1 + len(list(prefix.glob("_*")))


def run_setting(args: argparse.Namespace, part_seconds: str) -> str:
    """Kill at 50%, restart, and report."""
    from gym_operator.rollout.output import read_committed
    from gym_operator.storage.store import Storage
    from gym_operator.storage.uri import parse_uri

    verifier, verifier_url = start_stub(None)
    stub, url = start_stub(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="gymops-bench-") as tmp:
            spec = write_job(
                Path(tmp), args.rollouts, args.concurrency, url, verifier_url, part_seconds
            )
            cmd = [PYTHON, "-m", "gym_operator.cli", "--log-level", "WARNING", "generate"]
            cmd = pinned([*cmd, "--spec", str(spec), "--shard", "0/1"], 1)
            proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
            while stats(url)["requests"] < args.rollouts / 2:
                time.sleep(0.01)
            proc.kill()
            proc.wait()
            at_kill, killed_at = stats(url), time.time()
            answered = at_kill["requests"] - at_kill["in_flight"]
            rate = answered / (killed_at - at_kill["first_request"])
            subprocess.run(cmd, stderr=subprocess.DEVNULL, check=True)
            final = stats(url)
            out = read_committed(Storage(), parse_uri(str(Path(tmp) / "out")))
            keys = [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts]
            writes = storage_writes(Path(tmp) / "out")
    finally:
        for proc in (stub, verifier):
            proc.terminate()
            proc.wait(10)
    resent = final["requests"] - args.rollouts
    bound = at_kill["in_flight"] + TARGET_SECONDS * rate
    verdict = "met" if resent <= bound else "not met"
    line = (
        f"partSeconds {part_seconds:>7}: rate {rate:5.1f}/s; re-sent {resent:4d}, in flight at "
        f"the kill {at_kill['in_flight']} + 5 s of answers {TARGET_SECONDS * rate:.0f} = "
        f"{bound:.0f} ({verdict}); rows {len(keys)}/{args.rollouts}, lost "
        f"{args.rollouts - len(set(keys))}, duplicated {len(keys) - len(set(keys))}; storage "
        f"writes {writes} ({writes / args.rollouts * 1e6:,.0f} per 1,000,000 rollouts at this rate)"
    )
    print(line, flush=True)
    return line


def main() -> None:
    """Each setting in turn."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.25, help="model latency, seconds")
    parser.add_argument("--rollouts", type=int, default=2400)
    parser.add_argument(
        "--part-seconds", default="default,30", help="comma-separated; `default`: left unset"
    )
    args = parser.parse_args()
    for setting in args.part_seconds.split(","):
        run_setting(args, setting)


if __name__ == "__main__":
    main()

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
import subprocess
import tempfile
import time
from pathlib import Path

import common

TARGET_SECONDS = 5.0


def job_spec(
    args: argparse.Namespace, url: str, verifier: str, out: Path, part_seconds: str
) -> dict[str, object]:
    """The spec's fields (`part_seconds` "default": the field is left out)."""
    output: dict[str, object] = {"uri": str(out)}
    if part_seconds != "default":
        output["partSeconds"] = float(part_seconds)
    return {
        "policy": {"baseURL": url, "model": "stub"},
        "sampling": {"numRepeats": 4, "concurrency": args.concurrency},
        "verifier": {"url": verifier.removesuffix("/v1")},
        "output": output,
        "retry": common.RETRY,
    }


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
    verifier, verifier_url = common.start_stub(None)
    stub, url = common.start_stub(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="gymops-bench-") as tmp:
            out = Path(tmp) / "out"
            spec = common.write_job(
                Path(tmp),
                "bench-kill",
                args.rollouts // 4,
                job_spec(args, url, verifier_url, out, part_seconds),
            )
            cmd = common.pinned(common.generate_cmd(spec), 1)
            proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
            while common.server_stats(url)["requests"] < args.rollouts / 2:
                time.sleep(0.01)
            proc.kill()
            proc.wait()
            at_kill, killed_at = common.server_stats(url), time.time()
            answered = at_kill["requests"] - at_kill["in_flight"]
            rate = answered / (killed_at - at_kill["first_request"])
            subprocess.run(cmd, stderr=subprocess.DEVNULL, check=True)
            final = common.server_stats(url)
            keys = [
                (r["_ng_task_index"], r["_ng_rollout_index"])
                for r in common.committed(out).rollouts
            ]
            writes = storage_writes(out)
    finally:
        common.stop(stub, verifier)
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

"""Slow-verifier benchmark: does sampling wait for verification?

`gymops generate` runs the same job twice against a fresh stub model (fixed latency), once with an
instant verifier and once with a verifier whose latency is `--ratio` times the model's. Reported:
the model-side throughput (model answers per second, first request to last answer, from the
stub's counters) and the mean model requests in flight, and the slow run's throughput as a
fraction of the instant run's (target >= 0.95 at ratio 2). The verifier is a small aiohttp
server in its own process (this file with --serve-verifier), scoring like the stub's /verify.

    .venv/bin/python bench/slow_verifier.py                    # c=64, model 200 ms, ratio 2
    .venv/bin/python bench/slow_verifier.py --ratio 3 --rollouts 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path

import common


def serve_verifier(latency: float) -> None:
    """A /verify that answers after `latency` seconds: 1.0 when expected_answer is in the text."""
    from aiohttp import web

    from gym_operator.testing.loopback import serve_until_interrupted, start_app

    async def verify(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        await asyncio.sleep(latency)
        text = json.dumps(body.get("response", {}).get("output", []))
        expected = str(body.get("expected_answer", ""))
        return web.json_response({"reward": 1.0 if expected and expected in text else 0.0})

    app = web.Application()
    app.router.add_post("/verify", verify)
    serve_until_interrupted(lambda: start_app(app))


def run_once(args: argparse.Namespace, verifier_latency: float) -> dict[str, float]:
    """One `gymops generate` run; the model side's rate and mean requests in flight."""
    model, model_url = common.start_stub(args.latency)
    verifier, verifier_url = common.start_server(
        common.pinned([common.PYTHON, __file__, "--serve-verifier", str(verifier_latency)], 0)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="gymops-bench-") as tmp:
            spec = common.write_job(
                Path(tmp),
                "bench-slow-verifier",
                args.rollouts // 4,
                {
                    "policy": {"baseURL": model_url, "model": "stub"},
                    "sampling": {"numRepeats": 4, "concurrency": args.concurrency},
                    "verifier": {"url": verifier_url},
                    "output": {"uri": str(Path(tmp) / "out")},
                    "retry": common.RETRY,
                },
            )
            started = time.time()
            cmd = common.pinned(common.generate_cmd(spec), 1)
            subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
            wall = time.time() - started
        stats = common.server_stats(model_url)
    finally:
        common.stop(model, verifier)
    run = stats["last_answer"] - stats["first_request"]
    return {
        "rate": stats["requests"] / run,
        "in_flight": stats["in_flight_seconds"] / run,
        "wall": wall,
    }


def main() -> None:
    """Instant verifier, then slow verifier; print both and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-verifier", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="model latency, seconds")
    parser.add_argument("--ratio", type=float, default=2.0, help="verifier / model latency")
    parser.add_argument("--rollouts", type=int, default=4000)
    args = parser.parse_args()
    if args.serve_verifier is not None:
        serve_verifier(args.serve_verifier)
        return
    ideal = args.concurrency / args.latency
    results = {}
    for name, latency in (("instant", 0.0), (f"{args.ratio:g}x slow", args.ratio * args.latency)):
        results[name] = run_once(args, latency)
        r = results[name]
        print(
            f"verifier {name:<10} latency {latency * 1000:5.0f} ms: model {r['rate']:6.1f} "
            f"answers/s ({r['rate'] / ideal:.3f} of ideal {ideal:.0f}), mean in flight "
            f"{r['in_flight']:5.1f} of {args.concurrency}, wall {r['wall']:.1f} s",
            flush=True,
        )
    instant, slow = results.values()
    ratio = slow["rate"] / instant["rate"]
    verdict = "met" if ratio >= 0.95 else "not met"
    print(
        f"model-side throughput, slow / instant verifier: {ratio:.3f} (target >= 0.95: {verdict})"
    )


if __name__ == "__main__":
    main()

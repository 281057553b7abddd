"""A simulated continuous-batching GPU model server (there is no GPU here), for throughput benches.

The stub model answers after a fixed or random delay whatever the load, so it cannot show what
concurrency does to a real server. This one behaves like vLLM's scheduler in miniature:

- one engine loop runs decode steps; each step adds one token to every running sequence and takes
  `step_base + step_per_seq x running` seconds (plus prefill time for prompts admitted this step),
  so latency grows with the running batch and throughput saturates;
- a sequence is admitted only while the KV budget (`kv_tokens`, prompt plus generated tokens of all
  running sequences) and `max_batch` allow; the rest wait in a FIFO queue. When the running
  sequences outgrow the budget, the newest are preempted and recomputed from scratch later;
- output lengths are lognormal (`output_mean`, `output_sigma`, capped at `max_output`);
- it never answers 429: a full server queues, as vLLM does, so latency grows without bound.

Serves `POST /v1/chat/completions`, `POST /v1/responses` (the answer is the stub model's sum, so
the math verifier scores it) and `GET /stats`. Profiles in `PROFILES`; run standalone with
`python -m gym_operator.testing.sim_gpu --profile kv-bound --port 8000`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from gym_operator.testing import answers
from gym_operator.testing.loopback import serve_until_interrupted, start_app
from gym_operator.testing.stub_model import answer_for, answer_text, prompt_text


@dataclass(frozen=True)
class GpuProfile:
    """Speed and memory of one simulated server."""

    step_base: float
    """Seconds of one decode step with a single running sequence."""
    step_per_seq: float
    """Seconds each further running sequence adds to a step."""
    kv_tokens: int
    """KV cache budget: prompt plus generated tokens of all running sequences."""
    max_batch: int
    """Most sequences running at once (vLLM's max_num_seqs)."""
    prompt_tokens: int = 100
    prefill_per_token: float = 2e-6
    output_mean: float = 60.0
    output_sigma: float = 0.6
    max_output: int = 400


PROFILES: dict[str, GpuProfile] = {
    # Memory-bound: the KV budget holds about 64 typical sequences, the queue takes the rest.
    "kv-bound": GpuProfile(step_base=0.008, step_per_seq=0.00008, kv_tokens=10_000, max_batch=512),
    # Compute-bound: step time grows steeply, max_num_seqs caps the batch at 256.
    "batch-bound": GpuProfile(
        step_base=0.006, step_per_seq=0.00006, kv_tokens=200_000, max_batch=256
    ),
    # Long-tailed outputs in a tight budget: long answers get preempted and recomputed.
    "long-tail": GpuProfile(
        step_base=0.008,
        step_per_seq=0.00005,
        kv_tokens=16_000,
        max_batch=512,
        output_mean=50.0,
        output_sigma=1.1,
        max_output=800,
    ),
}


@dataclass
class _Sequence:
    target: int
    done: asyncio.Future[None]
    generated: int = 0
    prefilled: bool = False


@dataclass
class SimStats:
    """Counters for benches (GET /stats)."""

    completed: int = 0
    preempted: int = 0
    steps: int = 0
    max_running: int = 0
    max_waiting: int = 0
    output_tokens: int = 0


@dataclass
class GpuEngine:
    """The scheduler and decode loop of one simulated server."""

    profile: GpuProfile
    seed: int = 0
    stats: SimStats = field(default_factory=SimStats)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._waiting: deque[_Sequence] = deque()
        self._running: list[_Sequence] = []
        self._wake = asyncio.Event()

    def output_length(self) -> int:
        """One draw from the output length distribution (mean `output_mean`)."""
        p = self.profile
        mu = math.log(p.output_mean) - p.output_sigma**2 / 2
        return max(1, min(p.max_output, round(self._rng.lognormvariate(mu, p.output_sigma))))

    async def generate(self, max_tokens: int | None) -> int:
        """Queue one request; returns its output length once its last token is decoded."""
        target = self.output_length()
        if max_tokens:
            target = min(target, max_tokens)
        seq = _Sequence(target, asyncio.get_running_loop().create_future())
        self._waiting.append(seq)
        self._wake.set()
        try:
            await seq.done
        finally:
            if seq in self._waiting:
                self._waiting.remove(seq)
            if seq in self._running:
                self._running.remove(seq)
        return target

    def _kv_used(self) -> int:
        return sum(self.profile.prompt_tokens + s.generated for s in self._running)

    def _admit(self) -> int:
        """Move waiting sequences in while batch and KV budget allow; returns tokens prefilled."""
        p, prefilled = self.profile, 0
        used = self._kv_used()
        while self._waiting and len(self._running) < p.max_batch:
            if used + p.prompt_tokens + 1 > p.kv_tokens and self._running:
                break
            seq = self._waiting.popleft()
            self._running.append(seq)
            used += p.prompt_tokens
            prefilled += p.prompt_tokens
        return prefilled

    def _preempt(self) -> None:
        """Newest sequences out (recomputed later from scratch) until the rest fit."""
        while len(self._running) > 1 and self._kv_used() > self.profile.kv_tokens:
            seq = self._running.pop()
            seq.generated = 0
            self._waiting.appendleft(seq)
            self.stats.preempted += 1

    async def run(self) -> None:
        """The engine loop: admit, step, grow, preempt, finish; forever."""
        p = self.profile
        while True:
            self._running = [s for s in self._running if not s.done.done()]
            if not self._running and not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            prefilled = self._admit()
            s = self.stats
            s.max_running = max(s.max_running, len(self._running))
            s.max_waiting = max(s.max_waiting, len(self._waiting))
            step = p.step_base + p.step_per_seq * len(self._running)
            await asyncio.sleep(step + p.prefill_per_token * prefilled)
            s.steps += 1
            for seq in self._running:
                seq.generated += 1
            self._preempt()
            for seq in [q for q in self._running if q.generated >= q.target]:
                self._running.remove(seq)
                if not seq.done.done():
                    seq.done.set_result(None)
                    s.completed += 1
                    s.output_tokens += seq.target


class SimServer:
    """The HTTP face of a GpuEngine (OpenAI chat completions and responses)."""

    def __init__(self, profile: GpuProfile, seed: int = 0) -> None:
        self.engine = GpuEngine(profile, seed)

    def app(self) -> web.Application:
        """The aiohttp application; the engine loop runs while the app does."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/stats", self._stats)
        app.cleanup_ctx.append(self._engine_loop)
        return app

    async def _engine_loop(self, _: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.engine.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.engine.stats.__dict__)

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        return web.json_response(await self._answer(body, limit, answers.chat_completion))

    async def _responses(self, request: web.Request) -> web.Response:
        body = await request.json()
        limit = body.get("max_output_tokens")
        return web.json_response(await self._answer(body, limit, answers.response))

    async def _answer(
        self, body: dict[str, Any], limit: int | None, build: Callable[..., dict[str, Any]]
    ) -> dict[str, Any]:
        """The stub's answer once generated; cut short when the token limit was reached."""
        tokens = await self.engine.generate(limit)
        length = bool(limit) and tokens >= int(limit or 0)
        prompt = prompt_text(body)
        text = answer_text(answer_for(prompt, body.get("seed")), length, prompt)
        return build(
            body.get("model", "sim"),
            text,
            length=length,
            input_tokens=self.engine.profile.prompt_tokens,
            output_tokens=tokens,
        )


async def start(
    server: SimServer, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start in the running loop; returns the runner and the base URL (ending in /v1)."""
    runner, root = await start_app(server.app(), host, port)
    return runner, f"{root}/v1"


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; prints the base URL on its first line of output."""
    parser = argparse.ArgumentParser(prog="sim_gpu", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="kv-bound")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1.0, help="Divide step times by this.")
    args = parser.parse_args(argv)
    base = PROFILES[args.profile]
    profile = replace(
        base, step_base=base.step_base / args.speed, step_per_seq=base.step_per_seq / args.speed
    )

    serve_until_interrupted(lambda: start(SimServer(profile, args.seed), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A stub OpenAI-compatible model server with fault injection, for tests and benchmarks only.

Serves `POST /v1/chat/completions` and `POST /v1/responses` on loopback (plus a trivially cheap
`POST /verify` and `GET /stats` for benchmarks). Answers are deterministic:
the sum of the integers in the last user message, plus one when the request's seed is odd, written
as "... #### <n>" so the math verifier scores even seeds right and odd seeds wrong. A prompt asking
for llm_judge's `[[A=B]]` verdict gets one (equal when both answers' last lines hold the same
numbers).

Faults come two ways:
- rates (benchmarks): latency fixed or lognormal, and per-request probabilities of 429 (with
  Retry-After), 500, connection reset, hang, malformed JSON and finish_reason=length;
- directives in the prompt (tests), deterministic per (prompt, seed): `#fault:429x2` makes the
  first two attempts answer 429, likewise `500`, `reset`, `hang`, `malformed`; `#fault:400` always
  answers 400; `#length` always stops at the token limit.
`counts[(prompt, seed)]` holds the requests received per key, for asserting retries.

Run standalone: `python -m gym_operator.testing.stub_model --port 8000 --latency 0.5`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import sys
import time
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any

from aiohttp import web

from gym_operator.testing import answers
from gym_operator.testing.loopback import run_in_thread, serve_until_interrupted, start_app

_DIRECTIVE = re.compile(r"#fault:(\w+?)(?:x(\d+))?\b")
_INT = re.compile(r"-?\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# A prompt holding this verdict marker (llm_judge's equivalence prompt) gets a judge's verdict.
JUDGE_REQUEST = "[[A=B]]"


@dataclass
class StubConfig:
    """Latency and fault rates of the stub."""

    latency: float = 0.0
    """Mean latency in seconds."""
    latency_dist: str = "fixed"
    """fixed or lognormal (with `sigma`, same mean)."""
    sigma: float = 1.0
    rate_429: float = 0.0
    retry_after: float | None = 1.0
    rate_500: float = 0.0
    rate_reset: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    rate_length: float = 0.0
    hang_seconds: float = 3600.0
    seed: int = 0


def prompt_text(body: dict[str, Any]) -> str:
    """The last user message's text (chat `messages` or responses `input`)."""
    source = body.get("messages") if "messages" in body else body.get("input")
    if isinstance(source, str):
        return source
    for message in reversed(source or []):
        if message.get("role", "user") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))
    return ""


def answer_for(prompt: str, seed: int | None) -> int:
    """The stub's answer: sum of the integers (outside directives), +1 for odd seeds."""
    clean = _DIRECTIVE.sub("", prompt)
    value = sum(int(x) for x in _INT.findall(clean))
    return value + 1 if seed is not None and seed % 2 else value


class StubModel:
    """The server's state: config, counters and the aiohttp application."""

    def __init__(self, config: StubConfig | None = None) -> None:
        self.config = config or StubConfig()
        self.counts: Counter[tuple[str, int | None]] = Counter()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.status_counts: Counter[int] = Counter()
        self.hosts: Counter[str] = Counter()
        """Model requests per Host header (a headless Service's name, when called through one)."""
        self.first_request: float | None = None
        self.last_answer: float | None = None
        self.in_flight_seconds = 0.0
        self._last_change = time.time()
        self._rng = random.Random(self.config.seed)

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/verify", self._verify)
        app.router.add_get("/stats", self._stats)
        return app

    async def _verify(self, request: web.Request) -> web.Response:
        """A trivially cheap verifier (benchmarks): 1.0 when expected_answer is in the text."""
        body = json.loads(await request.read())
        text = json.dumps(body.get("response", {}).get("output", []))
        expected = str(body.get("expected_answer", ""))
        return web.json_response({"reward": 1.0 if expected and expected in text else 0.0})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": self.requests,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "in_flight_seconds": self.in_flight_seconds,
                "first_request": self.first_request,
                "last_answer": self.last_answer,
                "status_counts": {str(k): v for k, v in self.status_counts.items()},
                "hosts": dict(self.hosts),
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, chat=True)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, chat=False)

    def _latency(self) -> float:
        cfg = self.config
        if cfg.latency <= 0:
            return 0.0
        if cfg.latency_dist == "lognormal":
            mu = math.log(cfg.latency) - cfg.sigma**2 / 2
            return self._rng.lognormvariate(mu, cfg.sigma)
        return cfg.latency

    def _fault(self, prompt: str, attempt: int) -> str | None:
        for kind, count in _DIRECTIVE.findall(prompt):
            if kind == "400" or attempt <= int(count or 0):
                return kind
        cfg, roll = self.config, self._rng.random()
        for kind, rate in (
            ("429", cfg.rate_429),
            ("500", cfg.rate_500),
            ("reset", cfg.rate_reset),
            ("hang", cfg.rate_hang),
            ("malformed", cfg.rate_malformed),
        ):
            if roll < rate:
                return kind
            roll -= rate
        return None

    async def _handle(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        self.requests += 1
        self.hosts[request.host] += 1
        if self.first_request is None:
            self.first_request = time.time()
        self._count_in_flight(+1)
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = json.loads(await request.read())
            prompt = prompt_text(body)
            seed = body.get("seed")
            key = (prompt, seed)
            self.counts[key] += 1
            fault = self._fault(prompt, self.counts[key])
            delay = self._latency()
            if delay:
                await asyncio.sleep(delay)
            if fault is not None:
                return await self._faulty(request, fault)
            self.status_counts[200] += 1
            length = "#length" in prompt or self._rng.random() < self.config.rate_length
            answer = answer_for(prompt, seed)
            return web.json_response(_answer(body, prompt, answer, length, chat=chat))
        finally:
            self._count_in_flight(-1)
            self.last_answer = time.time()

    def _count_in_flight(self, delta: int) -> None:
        now = time.time()
        self.in_flight_seconds += self.in_flight * (now - self._last_change)
        self._last_change = now
        self.in_flight += delta

    async def _faulty(self, request: web.Request, fault: str) -> web.StreamResponse:
        if fault == "429":
            self.status_counts[429] += 1
            headers = {"x-ratelimit-remaining-requests": "0"}
            if self.config.retry_after is not None:
                headers["Retry-After"] = f"{self.config.retry_after:g}"
            return web.json_response({"error": "rate limited"}, status=429, headers=headers)
        if fault in ("500", "400"):
            self.status_counts[int(fault)] += 1
            return web.json_response({"error": f"injected {fault}"}, status=int(fault))
        if fault == "malformed":
            self.status_counts[200] += 1
            return web.Response(body=b'{"choices": [', content_type="application/json")
        if fault == "hang":
            await asyncio.sleep(self.config.hang_seconds)
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("injected reset")


def judge_verdict(prompt: str) -> str:
    """A judge's verdict on llm_judge's equivalence prompt: equal when the last lines of both
    answers hold the same numbers (a crude, deterministic judge; it never reads the question)."""
    first = prompt[prompt.find("Answer A:") + 9 : prompt.rfind("Answer B:")]
    second = prompt[prompt.rfind("Answer B:") + 9 :].rsplit("\n\n", 1)[0]
    numbers = [
        sorted(float(n) for n in _NUMBER.findall(([""] + text.strip().splitlines())[-1]))
        for text in (first, second)
    ]
    same = bool(numbers[0]) and numbers[0] == numbers[1]
    return "Comparing the final numbers. " + ("[[A=B]]" if same else "[[A!=B]]")


def answer_text(answer: int, length: bool, prompt: str = "") -> str:
    """The stub's reply: `... #### <answer>`, a cut-short sentence when `length`, or a verdict."""
    if JUDGE_REQUEST in prompt:
        return judge_verdict(prompt)
    return "Let me add these up. The sum" if length else f"The sum is {answer}.\n#### {answer}"


def _answer(
    body: dict[str, Any], prompt: str, answer: int, length: bool, *, chat: bool
) -> dict[str, Any]:
    text = answer_text(answer, length, prompt)
    build = answers.chat_completion if chat else answers.response
    return build(
        body.get("model", "stub"),
        text,
        length=length,
        input_tokens=len(prompt.split()) + 1,
        output_tokens=len(text.split()),
    )


async def start(
    stub: StubModel, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start in the running loop; returns the runner and the base URL (ending in /v1)."""
    runner, root = await start_app(stub.app(), host, port, shutdown_timeout=0.5)
    return runner, f"{root}/v1"


def serve_in_thread(stub: StubModel) -> AbstractContextManager[str]:
    """Run the stub on its own event loop in a daemon thread; yields the base URL."""
    return run_in_thread(lambda: start(stub), name="stub-model")


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; prints the base URL on its first line of output."""
    parser = argparse.ArgumentParser(prog="stub_model", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    for item in fields(StubConfig):
        flag = "--" + item.name.replace("_", "-")
        kind = str if item.name == "latency_dist" else (int if item.name == "seed" else float)
        parser.add_argument(flag, type=kind, default=item.default)
    args = parser.parse_args(argv)
    config = StubConfig(**{f.name: getattr(args, f.name) for f in fields(StubConfig)})

    serve_until_interrupted(lambda: start(StubModel(config), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

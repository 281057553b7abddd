"""`sampling.concurrency: auto`: the latency-gradient limit on synthetic latency streams."""

from __future__ import annotations

import asyncio
import random

import pytest

from gym_operator.api.rolloutjob import SamplingSpec
from gym_operator.rollout.concurrency import AdaptiveWindow, GradientLimit, make_window
from gym_operator.rollout.window import AimdWindow


class BatchServer:
    """A continuous-batching server in closed form: up to `batch` sequences decode together, a
    step takes `base + per_seq x running`, the rest queue. Seeded noise on output lengths."""

    def __init__(self, batch: int, base: float = 0.01, per_seq: float = 0.0001, seed: int = 1):
        self.batch, self.base, self.per_seq = batch, base, per_seq
        self.rng = random.Random(seed)
        self.now = 0.0

    def answer(self, in_flight: float) -> tuple[float, float, int]:
        """One answer with `in_flight` requests outstanding: (started, latency, tokens)."""
        running = max(1.0, min(in_flight, self.batch))
        step = self.base + self.per_seq * running
        tokens = max(1, int(self.rng.lognormvariate(3.9, 0.6)))
        wait = max(0.0, in_flight - self.batch) / running * 60 * step
        latency = tokens * step + wait
        self.now += 60 * step / running
        return self.now - latency, latency, tokens


def run(
    limiter: GradientLimit, server: BatchServer, answers: int, full: bool = True
) -> list[float]:
    """Feed `answers` answers at the limiter's current limit; the limits it went through."""
    seen = []
    for _ in range(answers):
        started, latency, tokens = server.answer(limiter.limit)
        # an answer is to a request started after the last change once the window has refilled
        if limiter.observe(started + latency, latency, tokens, full):
            seen.append(limiter.limit)
    return seen


def test_auto_settles_at_the_batch_the_server_can_hold() -> None:
    server = BatchServer(batch=96)
    limiter = GradientLimit(ceiling=1024)
    run(limiter, server, 40_000)
    assert 80 <= limiter.limit <= 160


@pytest.mark.parametrize("batch", [32, 256])
def test_auto_follows_servers_of_different_size(batch: int) -> None:
    limiter = GradientLimit(ceiling=4096)
    run(limiter, BatchServer(batch=batch, seed=batch), 60_000)
    assert 0.8 * batch <= limiter.limit <= 1.8 * batch


def test_auto_climbs_to_the_ceiling_while_more_in_flight_is_served_faster() -> None:
    limiter = GradientLimit(ceiling=200)
    run(limiter, BatchServer(batch=10_000, per_seq=0.00001), 20_000)
    assert limiter.limit >= 0.8 * 200


def test_auto_does_not_grow_while_demand_leaves_the_window_part_empty() -> None:
    limiter = GradientLimit(ceiling=1024, initial=8)
    run(limiter, BatchServer(batch=10_000), 5_000, full=False)
    assert limiter.limit == 8


def test_auto_backs_off_when_latency_nears_the_request_timeout() -> None:
    server = BatchServer(batch=500, base=0.05)
    limiter = GradientLimit(ceiling=1024, latency_cap=4.0)
    run(limiter, server, 40_000)
    _, latency, _ = server.answer(limiter.limit)
    assert limiter.limit < 500
    assert latency < 3 * 4.0


def test_two_clients_on_one_server_get_similar_shares() -> None:
    server, pick = BatchServer(batch=128), random.Random(7)
    clients = [GradientLimit(ceiling=1024), GradientLimit(ceiling=1024, initial=64)]
    answers, totals = [0, 0], []
    for i in range(120_000):
        total = clients[0].limit + clients[1].limit
        # both see the same latency; answers arrive in proportion to what each has in flight
        who = 0 if pick.random() < clients[0].limit / total else 1
        started, latency, tokens = server.answer(total)
        clients[who].observe(started + latency, latency, tokens, True)
        if i >= 60_000:
            answers[who] += 1
            totals.append(total)
    assert min(answers) / max(answers) >= 0.8
    assert 100 <= sum(totals) / len(totals) <= 260


def test_answers_to_requests_sent_before_a_change_are_not_counted() -> None:
    limiter = GradientLimit(ceiling=1024, initial=8, samples=4)
    for i in range(8):
        limiter.observe(float(i), 0.5, 10, True)
    assert limiter.limit == 16
    for _ in range(100):
        assert not limiter.observe(0.0, 0.5, 10, True)
    assert limiter.limit == 16


async def test_a_429_halves_the_auto_limit_and_the_gradient_goes_on_from_there() -> None:
    clock = [0.0]
    window = AdaptiveWindow(
        1024, limiter=GradientLimit(1024, initial=64, samples=8), clock=lambda: clock[0]
    )
    window.on_throttle()
    assert window.limit == 32
    for _ in range(window.ceiling):
        await window.acquire()
        if window.in_flight >= int(window.limit):
            break
    for _ in range(64):
        clock[0] += 0.1
        window.on_success(0.05, 20)
    assert window.limit > 32
    assert window.limit == window.limiter.limit


def test_a_number_keeps_the_fixed_window_and_auto_gets_the_adaptive_one() -> None:
    assert type(make_window(64, False)) is AimdWindow
    auto = make_window(1024, True, request_timeout=30)
    assert isinstance(auto, AdaptiveWindow)
    assert auto.limiter.latency_cap == 10
    assert SamplingSpec(concurrency="auto").concurrency == "auto"
    assert SamplingSpec.model_validate({"concurrency": 12}).concurrency == 12
    with pytest.raises(ValueError, match="concurrency"):
        SamplingSpec.model_validate({"concurrency": "fast"})


def test_the_adaptive_window_admits_up_to_its_current_limit() -> None:
    async def fill() -> int:
        window = AdaptiveWindow(1024, limiter=GradientLimit(1024, initial=8))
        admitted = 0
        for _ in range(20):
            try:
                await asyncio.wait_for(window.acquire(), 0.01)
            except TimeoutError:
                break
            admitted += 1
        return admitted

    assert asyncio.run(fill()) == 8

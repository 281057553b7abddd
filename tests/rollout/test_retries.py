"""Retries against the stub: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import time

import pytest

from gym_operator.protocol.failures import FailureClass
from gym_operator.rollout.client import ModelClient, make_session
from gym_operator.rollout.retry import (
    RetriesExhausted,
    RetryPolicy,
    call_with_retry,
    parse_retry_after,
)
from gym_operator.testing.stub_model import StubModel

FAST = RetryPolicy(max_attempts=3, timeout=2, budget=10, backoff_base=0.01, backoff_max=0.02)


async def _call(url: str, prompt: str, policy: RetryPolicy = FAST) -> tuple[dict, int]:
    async with make_session(4) as session:
        client = ModelClient(session, url, "stub", "chat")
        body = client.request_body({"input": prompt, "seed": 0})
        outcome = await call_with_retry(lambda t: client.create(body, t), policy)
        return outcome.value, outcome.attempts


async def test_429_retry_after_is_honoured(stub: tuple[StubModel, str]) -> None:
    model, url = stub
    model.config.retry_after = 0.4
    started = time.monotonic()
    response, attempts = await _call(url, "1 + 2 #fault:429x1")
    assert time.monotonic() - started >= 0.4
    assert attempts == 2
    assert model.counts[("1 + 2 #fault:429x1", 0)] == 2
    assert response["status"] == "completed"


async def test_500_reset_and_malformed_are_retried(stub: tuple[StubModel, str]) -> None:
    model, url = stub
    for fault in ("500", "reset", "malformed"):
        prompt = f"1 + 2 #fault:{fault}x2"
        _, attempts = await _call(url, prompt)
        assert attempts == 3, fault
        assert model.counts[(prompt, 0)] == 3


async def test_400_is_not_retried(stub: tuple[StubModel, str]) -> None:
    model, url = stub
    with pytest.raises(RetriesExhausted) as caught:
        await _call(url, "1 + 2 #fault:400")
    assert caught.value.error_class == FailureClass.HTTP_4XX
    assert caught.value.attempts == 1
    assert caught.value.failure()["status"] == 400
    assert model.counts[("1 + 2 #fault:400", 0)] == 1


async def test_attempts_never_exceed_max_attempts(stub: tuple[StubModel, str]) -> None:
    model, url = stub
    with pytest.raises(RetriesExhausted) as caught:
        await _call(url, "1 + 2 #fault:500x9")
    assert caught.value.error_class == FailureClass.HTTP_5XX
    assert caught.value.attempts == 3
    assert model.counts[("1 + 2 #fault:500x9", 0)] == 3


async def test_hang_times_out(stub: tuple[StubModel, str]) -> None:
    model, url = stub
    policy = RetryPolicy(max_attempts=2, timeout=0.2, budget=5, backoff_base=0.01)
    with pytest.raises(RetriesExhausted) as caught:
        await _call(url, "1 + 2 #fault:hangx5", policy)
    assert caught.value.error_class == FailureClass.TIMEOUT
    assert caught.value.attempts == 2


async def test_budget_exhausted_ends_early(stub: tuple[StubModel, str]) -> None:
    model, url = stub
    model.config.retry_after = 5
    policy = RetryPolicy(max_attempts=10, timeout=1, budget=1, backoff_base=0.01)
    started = time.monotonic()
    with pytest.raises(RetriesExhausted) as caught:
        await _call(url, "1 + 2 #fault:429x9", policy)
    assert time.monotonic() - started < 2.5  # half the 5 s Retry-After it must not wait out
    assert caught.value.error_class == FailureClass.HTTP_429
    assert caught.value.attempts == 1
    assert "budget" in caught.value.failure()["message"]


def test_retry_after_forms() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime(date).timestamp() - 30
    assert parse_retry_after(date, now=now) == pytest.approx(30)


def test_backoff_has_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(backoff_base=1, backoff_max=4)
    waits = [policy.backoff(10) for _ in range(200)]
    assert max(waits) <= 4 and min(waits) < 1

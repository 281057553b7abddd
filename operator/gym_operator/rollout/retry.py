"""Bounded retries: error classes, full-jitter exponential backoff, Retry-After, a time budget.

Every attempt counts toward `max_attempts`, whatever its class. `http_4xx` (other than 408/429),
`verifier_unscorable` and `answer_too_large` are final at once; everything else is retried while
attempts and the budget last. A wait that would overrun the budget ends the request at once as a
failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from gym_operator.protocol import failures
from gym_operator.protocol.failures import FailureClass

T = TypeVar("T")

NON_RETRYABLE = frozenset(
    {FailureClass.HTTP_4XX, FailureClass.VERIFIER_UNSCORABLE, FailureClass.TOO_LARGE}
)
"""Classes final at once: sending the request again cannot change the answer."""


class RequestError(Exception):
    """One failed attempt, classified."""

    def __init__(
        self,
        error_class: FailureClass,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether another attempt may help."""
        return self.error_class not in NON_RETRYABLE


class RetriesExhausted(Exception):
    """The request failed for good: the last error, how many attempts were made."""

    def __init__(self, last: RequestError, attempts: int) -> None:
        super().__init__(last.message)
        self.last = last
        self.attempts = attempts
        self.error_class = last.error_class

    def failure(self, *, verifying: bool = False) -> dict[str, object]:
        """The `failure` object of a failure row; `verifying`: the request was to the verifier."""
        error_class = failures.parse(self.error_class)
        if verifying and error_class is not None:
            error_class = error_class.verifying()
        out: dict[str, object] = {
            "class": str(error_class or self.error_class),
            "message": self.last.message[:500],
            "attempts": self.attempts,
        }
        if self.last.status is not None:
            out["status"] = self.last.status
        return out


@dataclass(frozen=True)
class RetryPolicy:
    """Limits of one logical request and its retries."""

    max_attempts: int = 3
    timeout: float = 600.0
    budget: float = 900.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return (rng or random).uniform(0, cap)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class Outcome(Generic[T]):
    """A successful result and the attempts it took."""

    value: T
    attempts: int


async def call_with_retry(
    attempt_fn: Callable[[float], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[RequestError], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome[T]:
    """Run `attempt_fn(timeout)` until it succeeds, a final error, attempts or budget run out."""
    deadline = clock() + policy.budget
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - clock()
        try:
            value = await attempt_fn(max(0.001, min(policy.timeout, remaining)))
            return Outcome(value, attempt)
        except RequestError as exc:
            last = exc
        if not last.retryable or attempt >= policy.max_attempts:
            raise RetriesExhausted(last, attempt)
        wait = policy.backoff(attempt)
        if last.retry_after is not None:
            wait = max(wait, last.retry_after)
        if clock() + wait >= deadline:
            last.message = f"{last.message} (retry budget of {policy.budget:g}s exhausted)"
            raise RetriesExhausted(last, attempt)
        if on_retry:
            on_retry(last)
        await asyncio.sleep(wait)

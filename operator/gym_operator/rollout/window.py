"""AIMD concurrency window: how many model requests may be in flight right now.

On a 429 without Retry-After the limit is halved (at most once per `cooldown` seconds, so a burst
of 429s from one overloaded moment counts as one signal); every success adds `increase` back, up
to the ceiling (`sampling.concurrency`). The window never drops below `floor`.

A 429 that carries Retry-After already slows its own request down by the wait the server named:
that is the back-pressure. Such 429s shrink the window only when they show overload, i.e. when
their share of recent answers (a moving average over about `1 / smoothing` answers) reaches
`overload_share`; scattered ones (a per-key quota, a noisy neighbour) leave it full.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gym_operator.rollout.stage import Stage


class AimdWindow:
    """An async semaphore whose size follows additive-increase / multiplicative-decrease."""

    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 1,
        decrease: float = 0.5,
        increase: float = 1.0,
        cooldown: float = 1.0,
        overload_share: float = 0.25,
        smoothing: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[float], None] | None = None,
    ) -> None:
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.decrease = decrease
        self.increase = increase
        self.cooldown = cooldown
        self.overload_share = overload_share
        self.smoothing = smoothing
        self.throttled_share = 0.0
        """Moving average of 429s among recent answers."""
        self.limit: float = float(ceiling)
        self._clock = clock
        self._last_decrease = float("-inf")
        self._on_change = on_change
        self.requests = Stage(lambda: int(self.limit))
        """The requests in flight, at most the current limit."""

    @property
    def in_flight(self) -> int:
        """Requests in flight now."""
        return self.requests.count

    async def acquire(self) -> None:
        """Wait until a request may start, then count it as in flight."""
        await self.requests.enter()

    def release(self) -> None:
        """A request finished (whatever its outcome)."""
        self.requests.leave()

    def on_success(self, latency: float | None = None, tokens: int | None = None) -> None:
        """A model answer: `latency` seconds, `tokens` output tokens (for adaptive subclasses)."""
        self.throttled_share -= self.smoothing * self.throttled_share
        self._grow(latency, tokens)

    def _grow(self, latency: float | None, tokens: int | None) -> None:
        """Additive increase, never above the ceiling."""
        if self.limit >= self.ceiling:
            return
        self.limit = min(float(self.ceiling), self.limit + self.increase)
        self._notify()
        self.requests.wake()

    def on_throttle(self, retry_after: float | None = None) -> None:
        """Multiplicative decrease on a 429 (once per cooldown), never below the floor; a 429
        with Retry-After only when 429s are `overload_share` of recent answers."""
        self.throttled_share += self.smoothing * (1.0 - self.throttled_share)
        if retry_after is not None and self.throttled_share < self.overload_share:
            return
        now = self._clock()
        if now - self._last_decrease < self.cooldown:
            return
        self._last_decrease = now
        self.limit = max(float(self.floor), self.limit * self.decrease)
        self._decreased()
        self._notify()

    def _decreased(self) -> None:
        """Hook: the limit was cut on a 429."""

    def _notify(self) -> None:
        if self._on_change:
            self._on_change(self.limit)

"""`sampling.concurrency: auto`: a latency-gradient limit that stops where throughput stops rising.

A continuous-batching server (vLLM, SGLang) never says it is full: past its KV budget it queues,
so latency grows with concurrency and, long before anything fails, requests wait for nothing.
The limit is found from what the client sees, in epochs: an epoch collects the answers to
requests *started* at the current limit (at least `samples`, and at least the limit itself),
and measures the cost per output token (sum of latencies / sum of output tokens; one token per
answer when the server reports none). Between two epochs at limits L0 and L1 the latency
gradient is

    g = (log cost1 - log cost0) / (log L1 - log L0)

and throughput grows as L^(1 - g): g near 0 means more requests in flight are served in the
same time (the batch has room), g near 1 means they only wait longer (a queue). The limit grows
by half its square root while g < `knee` and shrinks by `step_down` when g >= `knee`. Two guards
shrink it whatever g says: the mean latency past `latency_cap` (a third of the request timeout,
so the limit never pushes requests into timeouts), and the cost per token past `tolerance` x the
lowest seen (a Vegas-style bound: the queue may not grow without end). It starts at `initial`
and doubles (slow start) until the first epoch with g >= `slow_start_exit`; at the ceiling it
probes downwards. It never grows while the window was not full (demand, not the server, limited
the epoch).

Fairness: clients sharing a server see the same cost, and the Vegas bound is then a common
signal; growth by a square root and cuts by a fraction bring their limits together (AIMD's
argument), measured within 10-20% in `bench/concurrency_bench.py`.
This sits on top of the AIMD window: a 429 still halves the limit (window.AimdWindow), and the
gradient goes on from there. Pure arithmetic here: the clock and the answers come from outside.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gym_operator.rollout.window import AimdWindow

DEFAULT_AUTO_CEILING = 1024
"""Upper bound of `auto` when policy.maxConcurrency is not set."""


@dataclass
class _Epoch:
    limit: float
    cost: float
    latency: float


@dataclass
class GradientLimit:
    """The decision rule, fed one answer at a time (no I/O, no clock of its own)."""

    ceiling: int
    initial: float = 8.0
    floor: int = 1
    samples: int = 48
    knee: float = 0.8
    slow_start_exit: float = 0.5
    step_down: float = 0.15
    latency_cap: float | None = None
    tolerance: float = 8.0
    limit: float = field(init=False)
    slow_start: bool = field(init=False, default=True)
    _changed_at: float = field(init=False, default=float("-inf"))
    _latency_sum: float = field(init=False, default=0.0)
    _token_sum: int = field(init=False, default=0)
    _count: int = field(init=False, default=0)
    _previous: _Epoch | None = field(init=False, default=None)
    _base_cost: float = field(init=False, default=math.inf)

    def __post_init__(self) -> None:
        self.limit = float(max(self.floor, min(self.ceiling, self.initial)))

    def observe(self, started: float, latency: float, tokens: int | None, full: bool) -> bool:
        """One answer to a request started at `started` that took `latency` seconds. `full`:
        the window was full at some point this epoch. True when the limit changed."""
        if started < self._changed_at:
            return False
        self._latency_sum += latency
        self._token_sum += max(1, tokens or 1)
        self._count += 1
        if self._count < max(self.samples, int(self.limit)):
            return False
        epoch = _Epoch(
            self.limit, self._latency_sum / self._token_sum, self._latency_sum / self._count
        )
        return self._decide(epoch, full, now=started + latency)

    def reset(self, limit: float, now: float) -> None:
        """The limit was set from outside (a 429): measure afresh from `now`."""
        self.limit = float(max(self.floor, min(self.ceiling, limit)))
        self.slow_start = False
        self._previous = None
        self._restart(now)

    def _decide(self, epoch: _Epoch, full: bool, now: float) -> bool:
        before = self.limit
        self._base_cost = min(self._base_cost, epoch.cost)
        capped = self.latency_cap is not None and epoch.latency > self.latency_cap
        if capped or epoch.cost > self.tolerance * self._base_cost:
            self.slow_start = False
            target = self.limit * (1 - self.step_down)
        else:
            target = self._target(epoch, full)
        self._previous = epoch
        self.limit = float(max(self.floor, min(self.ceiling, target)))
        self._restart(now)
        return self.limit != before

    def _target(self, epoch: _Epoch, full: bool) -> float:
        previous, limit = self._previous, self.limit
        gradient = _gradient(previous, epoch)
        if gradient is None:
            # no step to measure across: probe downwards at the ceiling, else upwards
            return (
                limit * (1 - self.step_down) if limit >= self.ceiling else self._grow(limit, full)
            )
        if self.slow_start and gradient < self.slow_start_exit:
            return limit * 2 if full else limit
        self.slow_start = False
        if gradient < self.knee:
            return self._grow(limit, full)
        return limit * (1 - self.step_down)

    def _grow(self, limit: float, full: bool) -> float:
        if not full:
            return limit
        if self.slow_start:
            return limit * 2
        return limit + max(1.0, 0.5 * math.sqrt(limit))

    def _restart(self, now: float) -> None:
        self._changed_at = now
        self._latency_sum, self._token_sum, self._count = 0.0, 0, 0


def _gradient(previous: _Epoch | None, current: _Epoch) -> float | None:
    """d log(cost) / d log(limit) between two epochs; None without two distinct limits."""
    if previous is None or int(previous.limit) == int(current.limit):
        return None
    if previous.cost <= 0 or current.cost <= 0:
        return None
    step = math.log(int(current.limit) / int(previous.limit))
    return math.log(current.cost / previous.cost) / step


class AdaptiveWindow(AimdWindow):
    """The AIMD window whose limit between 429s follows a GradientLimit."""

    def __init__(
        self,
        ceiling: int,
        *,
        limiter: GradientLimit | None = None,
        clock: Callable[[], float] = time.perf_counter,
        on_change: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(ceiling, clock=clock, on_change=on_change)
        self.limiter = limiter or GradientLimit(ceiling)
        self.limit = self.limiter.limit

    def _grow(self, latency: float | None, tokens: int | None) -> None:
        if latency is None:
            return
        now = self._clock()
        full = self.requests.peak >= int(self.limit)
        if self.limiter.observe(now - latency, latency, tokens, full):
            self.limit = self.limiter.limit
            self.requests.reset_peak()
            self._notify()
            self.requests.wake()

    def _decreased(self) -> None:
        self.limiter.reset(self.limit, self._clock())
        self.requests.reset_peak()


def make_window(
    ceiling: int,
    auto: bool,
    *,
    request_timeout: float | None = None,
    on_change: Callable[[float], None] | None = None,
) -> AimdWindow:
    """A fixed-ceiling AIMD window, or with `auto` one whose limit follows the latency gradient
    (mean latency kept under a third of `request_timeout`)."""
    if not auto:
        return AimdWindow(ceiling, on_change=on_change)
    cap = request_timeout / 3 if request_timeout else None
    return AdaptiveWindow(
        ceiling, limiter=GradientLimit(ceiling, latency_cap=cap), on_change=on_change
    )


def base_ceiling(concurrency: int | str) -> int:
    """Most requests in flight per pod: the fixed number, or the bound of `auto`."""
    return DEFAULT_AUTO_CEILING if concurrency == "auto" else int(concurrency)

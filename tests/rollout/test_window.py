"""The AIMD window shrinks on 429, grows back on success, never leaves [floor, ceiling]."""

from __future__ import annotations

import asyncio

from gym_operator.rollout.window import AimdWindow


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_shrinks_once_per_cooldown_and_recovers() -> None:
    clock = Clock()
    window = AimdWindow(64, cooldown=1.0, clock=clock)
    window.on_throttle()
    window.on_throttle()  # same overload moment: one signal
    assert window.limit == 32
    clock.now = 2.0
    window.on_throttle()
    assert window.limit == 16
    for _ in range(100):
        window.on_success()
    assert window.limit == 64


async def test_never_below_floor() -> None:
    clock = Clock()
    window = AimdWindow(8, cooldown=0.0, clock=clock)
    for i in range(20):
        clock.now = i
        window.on_throttle()
    assert window.limit == 1


async def test_in_flight_never_exceeds_limit() -> None:
    window = AimdWindow(4)
    peak = 0

    async def request() -> None:
        nonlocal peak
        await window.acquire()
        peak = max(peak, window.in_flight)
        await asyncio.sleep(0.001)
        window.release()

    await asyncio.gather(*(request() for _ in range(50)))
    assert peak == 4 and window.in_flight == 0


async def test_shrunk_window_admits_fewer_and_growth_wakes_waiters() -> None:
    window = AimdWindow(4, cooldown=0.0)
    window.on_throttle()
    assert window.limit == 2
    await window.acquire()
    await window.acquire()
    third = asyncio.create_task(window.acquire())
    await asyncio.sleep(0.01)
    assert not third.done()
    window.on_success()  # limit 3: the waiter gets in
    await asyncio.wait_for(third, 30)
    assert window.in_flight == 3


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    window = AimdWindow(1)
    await window.acquire()
    waiter = asyncio.create_task(window.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    window.release()
    await asyncio.gather(waiter, return_exceptions=True)
    assert window.in_flight == 0


async def test_scattered_429s_with_retry_after_leave_the_window_full() -> None:
    clock = Clock()
    window = AimdWindow(256, cooldown=1.0, clock=clock)
    for i in range(2000):  # 5% of answers are 429 + Retry-After, spread over 10 s
        clock.now = i / 200
        if i % 20 == 0:
            window.on_throttle(retry_after=2.0)
        else:
            window.on_success()
        assert window.limit == 256


async def test_429s_with_retry_after_that_show_overload_shrink_the_window() -> None:
    clock = Clock()
    window = AimdWindow(256, cooldown=1.0, clock=clock)
    for _ in range(5):
        window.on_throttle(retry_after=2.0)
    assert window.limit == 256  # a few in a row: still within noise
    for _ in range(5):
        window.on_throttle(retry_after=2.0)
    assert window.limit == 128  # most recent answers are 429: the server is overloaded
    clock.now = 2.0
    for _ in range(10):
        window.on_throttle(retry_after=2.0)
    assert window.limit == 64
    for _ in range(200):
        window.on_success()
    assert window.limit == 256 and window.throttled_share < 0.01


async def test_429_without_retry_after_shrinks_at_once() -> None:
    window = AimdWindow(256, cooldown=1.0, clock=Clock())
    for _ in range(99):
        window.on_success()
    window.on_throttle()
    assert window.limit == 128

"""Stage: a first-come-first-served limit on how many may be inside at once, with a moving bound.

Used for the model window (AimdWindow: requests in flight, bound = the current limit) and for the
generator's stages of a rollout (bound = a multiple of the window's limit).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Stage:
    """At most `bound()` inside at once; the bound is read at each entry and on `wake()`."""

    def __init__(self, bound: Callable[[], int]) -> None:
        self.count = 0
        self.peak = 0
        """Most inside at once since the last `reset_peak()`."""
        self._bound = bound
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        """Wait for a place in this stage (first come, first served)."""
        if not self._waiters and self.count < self._bound():
            self._admit()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()
            else:
                self._waiters.remove(waiter)
            raise

    def leave(self) -> None:
        """Give a place back."""
        self.count -= 1
        self.wake()

    def wake(self) -> None:
        """Let waiters in while there is room (call it when the bound grew)."""
        bound = self._bound()
        while self._waiters and self.count < bound:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._admit()
                waiter.set_result(None)

    def reset_peak(self) -> None:
        """Start measuring the peak afresh from how many are inside now."""
        self.peak = self.count

    def _admit(self) -> None:
        self.count += 1
        self.peak = max(self.peak, self.count)

"""Stage: how many rollouts may be in one stage of their life; the bound follows the window."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Stage:
    """Rollouts in one stage, at most `bound()` (read at each entry: it follows the window)."""

    def __init__(self, bound: Callable[[], int]) -> None:
        self.count = 0
        self._bound = bound
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        """Wait for a place in this stage (first come, first served)."""
        if not self._waiters and self.count < self._bound():
            self.count += 1
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
        bound = self._bound()
        while self._waiters and self.count < bound:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.count += 1
                waiter.set_result(None)

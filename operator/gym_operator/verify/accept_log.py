"""The verifier server's event-loop exception handler: a connection flood logs one line a while."""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import time
from typing import Any

log = logging.getLogger(__name__)


class AcceptErrorLog:
    """The event loop's exception handler, with "out of descriptors" accept errors rate-limited.

    asyncio logs every failed accept() with a traceback, up to the listen backlog per second;
    under a connection flood that is megabytes of log. One line per `interval` seconds says the
    same (how many were left out); other errors go to the handler that was there before.
    """

    RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

    def __init__(self, previous: Any, interval: float = 10.0) -> None:
        self.previous = previous
        self.interval = interval
        self.last = -math.inf
        self.suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in self.RESOURCE_ERRORS:
            now = time.monotonic()
            if now - self.last < self.interval:
                self.suppressed += 1
                return
            log.warning(
                "cannot accept connections: %s (%d such errors not logged before this one)",
                error.strerror,
                self.suppressed,
            )
            self.last, self.suppressed = now, 0
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)

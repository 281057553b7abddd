"""Client-side balancing over replicas of one model: fewest requests in flight, a breaker each.

The replicas are the spec's base URLs; an `http://` URL whose host name resolves to several
addresses (a headless Service: one per ready pod) counts once per address, re-resolved every
`RESOLVE_SECONDS` as pods come and go (its requests keep the name in their Host header). IP
literals, `localhost` and `https://` URLs (their certificates name the host) are used as given.

Each request goes to the usable replica with the fewest requests in flight (ties in turn). A
replica that fails `failure_limit` requests in a row (no connection, timeout, 5xx) is skipped
for a cool-down that doubles while it keeps failing (up to `max_cooldown`); after it, a single
request probes it: success makes it usable again, failure starts the next cool-down. When every
replica is skipped, requests go to the one that recovers first, so their failures reach the
job's own breaker: it trips only when all replicas fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)
RESOLVE_SECONDS = 30.0
FAILURE_LIMIT = 3
FIRST_COOLDOWN = 1.0
MAX_COOLDOWN = 30.0


@dataclass(eq=False)
class Replica:
    """One endpoint: its base URL, the Host header it needs, requests in flight, health."""

    base_url: str
    host: str | None = None
    """The Service name for the Host header when `base_url` holds one of its addresses."""
    in_flight: int = 0
    failures: int = 0
    """Requests failed in a row by the replica's fault."""
    skipped_until: float = 0.0
    cooldown: float = 0.0

    def usable(self, now: float, failure_limit: int) -> bool:
        """Whether a request may go here now: not cooling down, and after a cool-down only one
        request (the probe) until one succeeds."""
        if self.failures < failure_limit:
            return True
        return now >= self.skipped_until and self.in_flight == 0


class ReplicaPool:
    """Picks a replica per request and keeps score of each one's failures."""

    def __init__(
        self,
        urls: list[str],
        *,
        failure_limit: int = FAILURE_LIMIT,
        first_cooldown: float = FIRST_COOLDOWN,
        max_cooldown: float = MAX_COOLDOWN,
        resolve_seconds: float = RESOLVE_SECONDS,
    ) -> None:
        if not urls:
            raise ValueError("a replica pool needs at least one base URL")
        self.urls = [url.rstrip("/") for url in urls]
        self.replicas = [Replica(url) for url in self.urls]
        self.failure_limit = failure_limit
        self.first_cooldown = first_cooldown
        self.max_cooldown = max_cooldown
        self.resolve_seconds = resolve_seconds
        self._turn = 0
        self._resolved_at = -float("inf")
        self._resolving: asyncio.Task[None] | None = None
        self._names = [url for url in self.urls if _resolvable(url)]

    def acquire(self) -> Replica:
        """The replica for the next request (count it in flight until `release`)."""
        if self._names:
            self._maybe_resolve()
        now = time.monotonic()
        replicas = self.replicas
        if len(replicas) == 1:
            best = replicas[0]
        else:
            count = len(replicas)
            start = self._turn = (self._turn + 1) % count
            usable = [replicas[(start + i) % count] for i in range(count)]
            limit = self.failure_limit
            usable = [r for r in usable if r.usable(now, limit)] or [
                min(replicas, key=lambda r: r.skipped_until)
            ]
            best = min(usable, key=lambda r: r.in_flight)
        best.in_flight += 1
        return best

    def release(self, replica: Replica, *, failed: bool) -> None:
        """The request ended; `failed` when the replica is to blame (unreachable, 5xx, timeout)."""
        replica.in_flight -= 1
        if not failed:
            replica.failures = 0
            replica.cooldown = 0.0
            return
        replica.failures += 1
        if replica.failures < self.failure_limit or len(self.replicas) == 1:
            return
        now = time.monotonic()
        if now < replica.skipped_until:
            return  # requests sent before it was skipped are still failing
        replica.cooldown = min(self.max_cooldown, max(self.first_cooldown, 2 * replica.cooldown))
        replica.skipped_until = now + replica.cooldown
        log.warning(
            "model replica %s failed %d requests in a row; skipped for %.0f s",
            replica.base_url,
            replica.failures,
            replica.cooldown,
        )

    def describe(self) -> str:
        """The endpoints for messages: the URL, or the first one and how many more."""
        if len(self.urls) == 1:
            return self.urls[0]
        return f"{self.urls[0]} (and {len(self.urls) - 1} more replicas)"

    def _maybe_resolve(self) -> None:
        due = time.monotonic() - self._resolved_at >= self.resolve_seconds
        if due and (self._resolving is None or self._resolving.done()):
            self._resolved_at = time.monotonic()
            self._resolving = asyncio.get_running_loop().create_task(self._resolve())

    async def _resolve(self) -> None:
        """Expand every resolvable URL into its addresses; keep replicas that still exist."""
        expanded: list[tuple[str, str | None]] = []
        for url in self.urls:
            if url in self._names:
                expanded.extend(await _addresses(url))
            else:
                expanded.append((url, None))
        current = {r.base_url: r for r in self.replicas}
        self.replicas = [current.get(url) or Replica(url, host) for url, host in expanded]
        if len(self.replicas) != len(current):
            log.info("model replicas: %d (%s)", len(self.replicas), self.describe())


def _resolvable(url: str) -> bool:
    """Whether the URL's host is a name that may stand for several addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "http" or not host or host == "localhost":
        return False
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return False
    return True


async def _addresses(url: str) -> list[tuple[str, str | None]]:
    """(base URL with an address for the host, Host header) per address; the URL alone when
    the name resolves to one address or cannot be resolved now."""
    parts = urlsplit(url)
    port = parts.port or 80
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError as exc:
        log.info("cannot resolve %s now (%s); using the name", parts.hostname, exc)
        return [(url, None)]
    addresses = sorted({str(info[4][0]) for info in infos})
    if len(addresses) < 2:
        return [(url, None)]
    userinfo, _, host = parts.netloc.rpartition("@")
    out = []
    for address in addresses:
        literal = f"[{address}]" if ":" in address else address
        netloc = f"{userinfo}@{literal}:{port}" if userinfo else f"{literal}:{port}"
        out.append((urlunsplit(parts._replace(netloc=netloc)), host))
    return out

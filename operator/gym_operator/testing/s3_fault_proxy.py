"""A loopback HTTP proxy in front of an S3 endpoint that injects faults (tests and benchmarks only).

Each request that matches the plan's methods and key pattern draws one fault from a seeded random
stream: dropped before it reaches S3 (never applied), dropped after S3 applied it (the answer is
lost), answered 503 SlowDown or 403 AccessDenied (never applied), delayed, or cut off halfway
through its body.
Requests can also be held at a gate until the test releases them, so a test can kill a worker
while one of its uploads is in flight.
The proxy runs its own event loop in a thread, so sync boto3 code and subprocesses can use it.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
DENIED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
ALL_METHODS = frozenset({"GET", "PUT", "POST", "HEAD", "DELETE"})


@dataclass(frozen=True)
class FaultPlan:
    """Fractions (0..1) of the eligible requests that get each fault; the rest pass untouched."""

    drop_before: float = 0.0
    """Connection closed before the request is forwarded: S3 never sees it."""
    drop_after: float = 0.0
    """Request forwarded and applied, then the connection closed: the answer is lost."""
    slowdown: float = 0.0
    """Answered `503 SlowDown` without forwarding."""
    delay: float = 0.0
    """Answer delayed by `delay_seconds` after S3 applied the request."""
    deny: float = 0.0
    """Answered `403 AccessDenied` without forwarding (wrong credentials or policy)."""
    truncate: float = 0.0
    """A 200/206 answer cut off halfway through its body (headers promise the whole length)."""
    delay_seconds: float = 0.0
    methods: frozenset[str] = ALL_METHODS
    """Only requests with these methods are eligible."""
    key_pattern: str | None = None
    """Only requests whose path matches this regex (re.search) are eligible."""

    def eligible(self, method: str, path: str) -> bool:
        """Whether a request may draw a fault."""
        if method not in self.methods:
            return False
        return self.key_pattern is None or re.search(self.key_pattern, path) is not None

    def draw(self, rng: random.Random) -> str | None:
        """One fault name, or None for a clean pass."""
        roll = rng.random()
        for name in ("drop_before", "drop_after", "slowdown", "deny", "delay", "truncate"):
            share = getattr(self, name)
            if roll < share:
                return name
            roll -= share
        return None


@dataclass
class Hold:
    """A gate: matching requests wait (before forwarding) until released."""

    method: str
    pattern: str
    held: threading.Event = field(default_factory=threading.Event)
    count: int = 0
    _release: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether the request is caught by this gate."""
        return method == self.method and re.search(self.pattern, path) is not None

    def wait_held(self, timeout: float) -> bool:
        """Block until a request is waiting at the gate."""
        return self.held.wait(timeout)

    def release(self) -> None:
        """Let held and future matching requests through."""
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)


class S3FaultProxy:
    """Forward HTTP requests to `upstream`, injecting the faults of `plan`.

    `stats` counts requests and faults by name; `attempts` counts requests per (method, path),
    so a test can check that a failed upload was retried.
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None, seed: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan or FaultPlan()
        self.stats: Counter[str] = Counter()
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.url = ""
        self._rng = random.Random(seed)
        self._holds: list[Hold] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> str:
        """Start serving on 127.0.0.1 (a free port); returns the proxy URL."""
        self._thread = threading.Thread(target=self._run, name="s3-fault-proxy", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise RuntimeError("S3 fault proxy failed to start") from self._error
        return self.url

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> S3FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def hold(self, method: str, pattern: str) -> Hold:
        """Add a gate for requests of `method` whose path matches `pattern`."""
        gate = Hold(method=method, pattern=pattern)
        if self._loop is not None:
            gate._loop = self._loop
            gate._release = asyncio.Event()
        with self._lock:
            self._holds.append(gate)
        return gate

    def release_all(self) -> None:
        """Release every gate (so a stopping test never leaves a request waiting)."""
        with self._lock:
            holds, self._holds = list(self._holds), []
        for gate in holds:
            gate.release()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, auto_decompress=False
        ) as session:
            self._session = session
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            self._started.set()
            try:
                await self._stop.wait()
            finally:
                self.release_all()
                await runner.cleanup()

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    async def _wait_at_gates(self, method: str, path: str) -> None:
        with self._lock:
            gates = [g for g in self._holds if g.matches(method, path)]
        for gate in gates:
            if gate._release is None:
                gate._loop, gate._release = self._loop, asyncio.Event()
            gate.count += 1
            gate.held.set()
            self._count("held")
            await gate._release.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        method, path = request.method, request.path
        with self._lock:
            self.attempts[(method, path)] += 1
            self.stats["requests"] += 1
            plan = self.plan
            fault = plan.draw(self._rng) if plan.eligible(method, path) else None
        await self._wait_at_gates(method, path)
        if fault == "drop_before":
            return self._drop(request, "drop_before")
        if fault == "slowdown":
            self._count("slowdown")
            return web.Response(status=503, body=SLOWDOWN_BODY, content_type="application/xml")
        if fault == "deny":
            self._count("deny")
            return web.Response(status=403, body=DENIED_BODY, content_type="application/xml")
        answer = await self._forward(request, body)
        if fault == "drop_after":
            return self._drop(request, "drop_after")
        if fault == "delay":
            self._count("delay")
            await asyncio.sleep(plan.delay_seconds)
        if fault == "truncate" and answer.status in (200, 206) and len(answer.body) > 1:  # type: ignore[arg-type]
            return await self._truncate(request, answer)
        return answer

    async def _truncate(self, request: web.Request, answer: web.Response) -> web.StreamResponse:
        self._count("truncate")
        body = bytes(answer.body)  # type: ignore[arg-type]
        headers = dict(answer.headers)
        headers["Content-Length"] = str(len(body))
        cut = web.StreamResponse(status=answer.status, headers=headers)
        await cut.prepare(request)
        await cut.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.abort()
        return cut

    def _drop(self, request: web.Request, name: str) -> web.Response:
        self._count(name)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        url = self.upstream + request.rel_url.raw_path_qs
        async with self._session.request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            payload = await upstream.read()
            # A HEAD answer's Content-Length is the object's size: keep it; otherwise aiohttp
            # sets it from the body it sends.
            keep_length = request.method == "HEAD"
            out_headers = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in HOP_BY_HOP and (keep_length or k.lower() != "content-length")
            }
        self._count("forwarded")
        if keep_length:
            return web.Response(status=upstream.status, headers=out_headers)
        return web.Response(status=upstream.status, body=payload, headers=out_headers)

"""A streaming HTTP proxy in front of the real kube-apiserver that injects API faults.

The operator talks to the proxy over plain HTTP with its bearer token; the proxy talks TLS to the
API server (trusting the test CA). The test (assertions) talks to the API server directly.
Faults, by count (every n-th request of a kind, see ApiFaults):
- a non-watch request answered 500 InternalError without reaching the API;
- a POST forwarded and applied, then answered 500 (the answer was lost), so a retry meets a real
  409 AlreadyExists;
- watches cut after a random 0.2 - `watch_max_seconds`, half cleanly, half by a reset.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

SKIP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
)


@dataclass
class ApiFaults:
    """Every n-th request of a kind gets the fault (0: never); counting makes the dose exact."""

    error_5xx_every: int = 0
    """Every n-th non-watch request is answered 500 InternalError without reaching the API."""
    lost_create_every: int = 0
    """Every n-th POST is applied, then answered 500: the answer is lost."""
    watch_max_seconds: float | None = None
    """Watches are cut after a random 0.2 to this many seconds (None: never)."""


def _every(period: int, count: int) -> bool:
    return period > 0 and count % period == 0


def status_body(code: int, reason: str, message: str) -> bytes:
    """A metav1.Status error body."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return json.dumps(body).encode()


class KubeFaultProxy:
    """Runs on its own loop in a thread; `stats` counts requests and injected faults."""

    def __init__(
        self,
        upstream: str,
        faults: ApiFaults | None = None,
        seed: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.ssl_context = ssl_context
        self.faults = faults or ApiFaults()
        self.stats: Counter[str] = Counter()
        self.url = ""
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kube-fault-proxy", daemon=True)

    def start(self) -> KubeFaultProxy:
        """Serve on 127.0.0.1; returns self once the URL is known."""
        self._thread.start()
        assert self._ready.wait(10), "the Kubernetes fault proxy did not start"
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def write_kubeconfig(self, path: Path, namespace: str, token: str) -> Path:
        """A kubeconfig that reaches the API through this proxy with a bearer token."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "faulty", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "faulty",
                    "context": {"cluster": "faulty", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "faulty",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        connector = aiohttp.TCPConnector(ssl=self.ssl_context or False)
        async with aiohttp.ClientSession(
            timeout=timeout, auto_decompress=False, connector=connector
        ) as session:
            self._session = session
            runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def _draw(self, request: web.Request, watch: bool) -> str | None:
        faults = self.faults
        with self._lock:
            self.stats["requests"] += 1
            kind = "WATCH" if watch else request.method
            self.stats[kind] += 1
            if watch:
                return None
            self.stats["calls"] += 1
            if _every(faults.error_5xx_every, self.stats["calls"]):
                return "error_5xx"
            if kind == "POST" and _every(faults.lost_create_every, self.stats["POST"]):
                return "lost_create"
        return None

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        watch = request.query.get("watch") in ("true", "1")
        fault = self._draw(request, watch)
        if fault == "error_5xx":
            self._count(fault)
            return web.Response(
                status=500,
                body=status_body(500, "InternalError", "injected: etcd leader changed"),
                content_type="application/json",
            )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP_HEADERS}
        url = self.upstream + request.rel_url.raw_path_qs
        async with self._session.request(
            request.method, url, headers=headers, data=body or None
        ) as upstream:
            if fault == "lost_create":
                await upstream.read()
                self._count(fault)
                return web.Response(
                    status=500,
                    body=status_body(500, "InternalError", "injected: answer lost"),
                    content_type="application/json",
                )
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in SKIP_HEADERS
            }
            response = web.StreamResponse(status=upstream.status, headers=out_headers)
            await response.prepare(request)
            if watch and self.faults.watch_max_seconds:
                await self._cut_watch(request, upstream, response)
                return response
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _cut_watch(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        response: web.StreamResponse,
    ) -> None:
        assert self.faults.watch_max_seconds is not None
        with self._lock:
            lifetime = self._rng.uniform(0.2, self.faults.watch_max_seconds)
            reset = self._rng.random() < 0.5
        try:
            async with asyncio.timeout(lifetime):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
        except TimeoutError:
            self._count("watch_reset" if reset else "watch_closed")
            if reset and request.transport is not None:
                request.transport.abort()
                return
        await response.write_eof()

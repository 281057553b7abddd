"""Serving an aiohttp app on loopback (in the running loop, a daemon thread, or as a process),
for tests and benches."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

ServerStart = Callable[[], Awaitable[tuple[web.AppRunner, str]]]
START_SECONDS = 120.0
"""How long a server in a thread may take to start (a busy machine can be slow)."""
STOP_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_app(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    reuse_address: bool = False,
    **options: Any,
) -> tuple[web.AppRunner, str]:
    """Serve `app` in the running loop (port 0: a free one); returns the runner and its root URL.
    `reuse_address` lets a restarted server take its port again at once; `options` go to the
    AppRunner (`shutdown_timeout=0` makes `runner.cleanup()` a crash: requests in flight are cut
    off)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **options)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=reuse_address or None)
    await site.start()
    bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound[1]}"


def serve_until_interrupted(start: ServerStart) -> None:
    """Serve with `start()` as this process's work, printing its base URL as the first line of
    output, until interrupted (Ctrl-C); for servers started as child processes."""

    async def serve() -> None:
        runner, url = await start()
        sys.stdout.write(f"{url}\n")
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


@contextmanager
def run_in_thread(start: ServerStart, name: str = "loopback-server") -> Iterator[str]:
    """Start the server with `start()` on a fresh loop in a thread; yields its base URL. The
    deadlines are generous (a busy machine); an error in `start()` is raised here."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["runner"], box["url"] = loop.run_until_complete(start())
        except BaseException as exc:  # raised in the caller's thread below
            box["error"] = exc
            return
        finally:
            ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    if not ready.wait(START_SECONDS):
        raise RuntimeError(f"{name} did not start within {START_SECONDS:g} s")
    if "error" in box:
        loop.close()
        raise box["error"]
    try:
        yield box["url"]
    finally:
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(STOP_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_SECONDS)
        loop.close()

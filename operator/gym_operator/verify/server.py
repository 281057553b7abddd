"""The verifier server: a NeMo Gym resource server (`/seed_session`, `/verify`) for built-ins.

CPU-bound checks run in a process pool, never on the event loop. A check that raises
VerifierError answers 422 with the reason; the generator turns that into a failure row.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gym_operator.verify.base import VerifierError, get_verifier, response_text

SETTINGS_KEY: web.AppKey[VerifierSettings] = web.AppKey("settings")
POOL_KEY: web.AppKey[ProcessPoolExecutor] = web.AppKey("pool")


@dataclass(frozen=True)
class VerifierSettings:
    """What the server verifies with, and its limits."""

    builtin: str
    config: dict[str, Any] = field(default_factory=dict)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    timeout_seconds: float = 60.0
    max_body_bytes: int = 32 * 1024 * 1024


def run_check(builtin: str, task: dict[str, Any], text: str, config: dict[str, Any]) -> dict:
    """Run one check (in a pool process); returns a JSON-able outcome."""
    try:
        result = get_verifier(builtin)(task, text, config)
    except VerifierError as exc:
        return {"error": str(exc)}
    return {"reward": result.reward, "components": result.components, "details": result.details}


async def seed_session(request: web.Request) -> web.Response:
    """Start a session (stateless built-ins only hand back an id)."""
    return web.json_response({"session_id": uuid.uuid4().hex})


async def verify(request: web.Request) -> web.Response:
    """Score the body's `response` against its task fields; answer the body plus `reward`."""
    settings = request.app[SETTINGS_KEY]
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "body is not JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("response"), dict):
        return web.json_response({"error": "body needs a `response` object"}, status=400)
    text = response_text(body["response"])
    loop = asyncio.get_running_loop()
    call = loop.run_in_executor(
        request.app[POOL_KEY], run_check, settings.builtin, body, text, settings.config
    )
    try:
        outcome = await asyncio.wait_for(call, settings.timeout_seconds)
    except TimeoutError:
        return web.json_response({"error": "verification timed out"}, status=504)
    if "error" in outcome:
        return web.json_response({"error": outcome["error"]}, status=422)
    answer = dict(body)
    answer["reward"] = outcome["reward"]
    if outcome["components"]:
        answer["reward_components"] = outcome["components"]
    return web.json_response(answer)


async def health(request: web.Request) -> web.Response:
    """Liveness: the server answers."""
    return web.json_response({"status": "ok"})


def create_app(settings: VerifierSettings) -> web.Application:
    """The aiohttp application; the process pool lives as long as the app."""
    get_verifier(settings.builtin)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS_KEY] = settings
    app.router.add_post("/seed_session", seed_session)
    app.router.add_post("/verify", verify)
    app.router.add_get("/health", health)

    async def pool_context(app: web.Application):  # type: ignore[no-untyped-def]
        app[POOL_KEY] = ProcessPoolExecutor(max_workers=settings.workers)
        yield
        app[POOL_KEY].shutdown(cancel_futures=True)

    app.cleanup_ctx.append(pool_context)
    return app


async def start_server(
    settings: VerifierSettings, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start the server in this event loop; returns the runner (cleanup()) and its base URL."""
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound[1]}"

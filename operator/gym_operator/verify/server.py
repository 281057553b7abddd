"""The verifier server: a NeMo Gym resource server (`/seed_session`, `/verify`, `/<tool>`).

CPU-bound checks run in a process pool sized to the cores, never on the event loop; async checks
(the LLM judge) run on the loop with one shared HTTP session. Answers: 200 with the body plus
`reward` (+ `reward_components`, `verifier_details`); 400 for a body that is not a JSON object
with a `response` object of the right shape, or JSON nested too deeply (the error names what is
wrong); 408 for a body not received within `body_timeout_seconds` (the connection is closed, as
is one without a complete request within `idle_timeout_seconds`); 413 above the size limit; 422
`{"error"}` when the verifier cannot score the response (the generator's failure row); 503 when a
pool worker died under the request (the pool is recreated; retry); 504 on the per-request timeout
(the pool is recycled so a stuck worker cannot pin a core). `/health` and `/metrics` report state.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import OrderedDict
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gym_operator import metrics, redaction
from gym_operator.verify import pool, sandbox
from gym_operator.verify.accept_log import AcceptErrorLog
from gym_operator.verify.base import (
    VerifierError,
    VerifyContext,
    get_fallback,
    get_tools,
    get_verifier,
    is_async_check,
    response_text,
    strip_reasoning,
)
from gym_operator.verify.bodies import (
    RAW_BODY,
    answer_bytes,
    bad_response_field,
    error_answer,
    read_json_object,
)
from gym_operator.verify.settings import SANDBOXED_BUILTINS, VerifierSettings

SESSION_COOKIE = "gymops_session"
SESSION_HEADER = "X-Session-Id"


class Sessions:
    """Per-session state of tool calls, bounded (oldest sessions are dropped first)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._states: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def create(self) -> str:
        """A new, empty session (the seeding row is not kept: rows may be megabytes)."""
        session_id = uuid.uuid4().hex
        self._states[session_id] = {}
        while len(self._states) > self.limit:
            self._states.popitem(last=False)
        metrics.VERIFIER_SESSIONS.set(len(self._states))
        return session_id

    def get(self, session_id: str | None) -> dict[str, Any]:
        """The session's state; an unknown or missing session gets a throw-away state."""
        if session_id and session_id in self._states:
            self._states.move_to_end(session_id)
            return self._states[session_id]
        return {}


SETTINGS_KEY: web.AppKey[VerifierSettings] = web.AppKey("settings", VerifierSettings)
POOL_KEY: web.AppKey[pool.PoolManager] = web.AppKey("pool", pool.PoolManager)
SESSIONS_KEY: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
HTTP_KEY: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
STATE_KEY: web.AppKey[dict[str, Any]] = web.AppKey("verifier_state", dict)


async def score_answer(app: web.Application, task: dict[str, Any], text: str) -> dict[str, Any]:
    """Score an answer's final `text` against its task row, as `POST /verify` does.

    The app's check runs in its process pool (or on the event loop when it is async) under the
    settings' timeout, then the check's fallback, if it has one. Returns the outcome: `reward`
    (with components and details), or `error` when the verifier cannot score the answer (a
    non-finite reward included). Raises TimeoutError naming the timeout (a pool check's pool is
    recycled) and BrokenProcessPool when a pool worker died (the pool is recreated; retry).
    """
    try:
        outcome = await _score(app, task, text)
    except TimeoutError:
        seconds = app[SETTINGS_KEY].timeout_seconds
        raise TimeoutError(f"verification exceeded {seconds} s") from None
    if "error" not in outcome and not math.isfinite(outcome["reward"]):
        return {"error": f"verifier produced a non-finite reward {outcome['reward']}"}
    return outcome


async def _score(app: web.Application, task: dict[str, Any], text: str) -> dict[str, Any]:
    """Run the check (pool or event loop) under the timeout; raises TimeoutError/BrokenPool."""
    settings = app[SETTINGS_KEY]
    check = get_verifier(settings.builtin)
    if is_async_check(check):
        context = VerifyContext(http=app[HTTP_KEY], state=app[STATE_KEY])
        try:
            async with asyncio.timeout(settings.timeout_seconds):
                result = await check(task, text, settings.config, context)  # type: ignore[call-arg]
        except VerifierError as exc:
            return {"error": str(exc)}
        except TimeoutError:
            raise
        except Exception as exc:  # a verifier bug on an odd row is a failure row, not a 500
            return {"error": f"verifier raised {type(exc).__name__}: {exc}"}
        return pool.outcome(result)  # type: ignore[arg-type]
    manager = app[POOL_KEY]
    current = manager.pool
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            outcome = await manager.check(task, text)
    except TimeoutError:
        manager.recycle(current, "a check exceeded the request timeout")
        raise
    return await _second_opinion(app, task, text, outcome)


async def _second_opinion(
    app: web.Application, task: dict[str, Any], text: str, outcome: dict[str, Any]
) -> dict[str, Any]:
    """The verifier's registered fallback (with its own timeouts) on a pool outcome, if any."""
    settings = app[SETTINGS_KEY]
    fallback = get_fallback(settings.builtin)
    if fallback is None or "error" in outcome:
        return outcome
    context = VerifyContext(http=app[HTTP_KEY], state=app[STATE_KEY])
    try:
        return await fallback(task, text, settings.config, context, outcome)
    except VerifierError as exc:
        return {"error": str(exc)}


async def verify(request: web.Request) -> web.Response:
    """Score the body's `response` against its task fields; answer the body plus `reward`."""
    settings = request.app[SETTINGS_KEY]
    body = await read_json_object(request, request.app[SETTINGS_KEY])
    if isinstance(body, web.Response):
        metrics.VERIFIER_VERIFICATIONS.labels("bad_request").inc()
        return body
    problem = bad_response_field(body)
    if problem:
        metrics.VERIFIER_VERIFICATIONS.labels("bad_request").inc()
        return error_answer(400, problem)
    text = response_text(body["response"])
    if settings.config.get("stripReasoning", True):
        text = strip_reasoning(text)
    task = {k: v for k, v in body.items() if k != "response"}
    started = time.monotonic()
    metrics.VERIFIER_IN_FLIGHT.inc()
    try:
        outcome = await score_answer(request.app, task, text)
    except TimeoutError as exc:
        metrics.VERIFIER_VERIFICATIONS.labels("timeout").inc()
        return error_answer(504, str(exc))
    except BrokenProcessPool:
        metrics.VERIFIER_VERIFICATIONS.labels("worker_crash").inc()
        return error_answer(503, "a verifier worker process died; the pool was recreated, retry")
    finally:
        metrics.VERIFIER_IN_FLIGHT.dec()
        metrics.VERIFIER_CHECK_SECONDS.observe(time.monotonic() - started)
    if "error" in outcome:
        metrics.VERIFIER_VERIFICATIONS.labels("unscorable").inc()
        return error_answer(422, outcome["error"])
    metrics.VERIFIER_VERIFICATIONS.labels("scored").inc()
    extra: dict[str, Any] = {"reward": outcome["reward"]}
    if outcome["components"]:
        extra["reward_components"] = outcome["components"]
    if outcome["details"]:
        extra["verifier_details"] = outcome["details"]
    return web.Response(
        body=answer_bytes(request[RAW_BODY], body, extra), content_type="application/json"
    )


async def seed_session(request: web.Request) -> web.Response:
    """Start a session (the body, the task row, is checked but not kept); id as cookie and JSON."""
    if request.can_read_body:
        body = await read_json_object(request, request.app[SETTINGS_KEY])
        if isinstance(body, web.Response):
            return body
    session_id = request.app[SESSIONS_KEY].create()
    response = web.json_response({"session_id": session_id})
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True)
    return response


def make_tool_handler(name: str):  # type: ignore[no-untyped-def]
    """The handler of `POST /<name>`: the body is the tool's arguments object."""

    async def handle(request: web.Request) -> web.Response:
        settings = request.app[SETTINGS_KEY]
        tool = get_tools(settings.builtin)[name]
        arguments = await read_json_object(request, request.app[SETTINGS_KEY])
        if isinstance(arguments, web.Response):
            return arguments
        session_id = request.cookies.get(SESSION_COOKIE) or request.headers.get(SESSION_HEADER)
        state = request.app[SESSIONS_KEY].get(session_id)
        try:
            async with asyncio.timeout(settings.tool_timeout_seconds):
                answer = await asyncio.to_thread(tool, arguments, state, settings.config)
        except Exception as exc:  # the model gets a readable error, the server stays up
            metrics.VERIFIER_TOOL_CALLS.labels(name, "error").inc()
            return error_answer(422, f"tool {name} failed: {type(exc).__name__}: {exc}")
        metrics.VERIFIER_TOOL_CALLS.labels(name, "ok").inc()
        return web.json_response(answer)

    return handle


async def health(request: web.Request) -> web.Response:
    """Liveness and readiness: the server answers and its pool has workers."""
    manager = request.app[POOL_KEY]
    return web.json_response(
        {
            "status": "ok",
            "verifier": request.app[SETTINGS_KEY].builtin,
            "workers": len(manager.worker_pids()),
            "worker_pids": manager.worker_pids(),
            "in_flight": manager.in_flight,
            "pool_restarts": manager.restarts,
        }
    )


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text exposition of this process's metrics."""
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: VerifierSettings) -> web.Application:
    """The aiohttp application; the process pool and HTTP session live as long as the app."""
    get_verifier(settings.builtin)
    redaction.register_env([str(settings.config.get("apiKeyEnv", "JUDGE_API_KEY"))])
    redaction.install_log_redaction()
    tools = get_tools(settings.builtin)
    reserved = {"seed_session", "verify", "health", "metrics"}
    if reserved & set(tools):
        raise ValueError(f"tool names {sorted(reserved & set(tools))} clash with endpoints")
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS_KEY] = settings
    app[SESSIONS_KEY] = Sessions(settings.max_sessions)
    app[STATE_KEY] = {}
    app.router.add_post("/seed_session", seed_session)
    app.router.add_post("/verify", verify)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_endpoint)
    for name in tools:
        app.router.add_post(f"/{name}", make_tool_handler(name))

    async def resources(app: web.Application):  # type: ignore[no-untyped-def]
        isolation = None
        if settings.builtin in SANDBOXED_BUILTINS:
            isolation = await asyncio.to_thread(sandbox.detect_isolation)
        app[POOL_KEY] = pool.PoolManager(
            settings.workers, settings.builtin, settings.config, settings.max_batch, isolation
        )
        app[HTTP_KEY] = aiohttp.ClientSession(trust_env=False)
        await app[POOL_KEY].warm_up()
        yield
        await app[HTTP_KEY].close()
        app[POOL_KEY].shutdown()

    app.cleanup_ctx.append(resources)
    return app


async def start_server(
    settings: VerifierSettings, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start the server in this event loop; returns the runner (cleanup()) and its base URL."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop.get_exception_handler(), AcceptErrorLog):
        loop.set_exception_handler(AcceptErrorLog(loop.get_exception_handler()))
    runner = web.AppRunner(
        create_app(settings), access_log=None, keepalive_timeout=settings.idle_timeout_seconds
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound[1]}"

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
import errno
import json
import logging
import math
import multiprocessing
import os
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gym_operator import metrics, redaction
from gym_operator.verify import sandbox
from gym_operator.verify.base import (
    VerifierError,
    VerifyContext,
    VerifyResult,
    get_fallback,
    get_tools,
    get_verifier,
    is_async_check,
    response_text,
    strip_reasoning,
)

log = logging.getLogger(__name__)

SESSION_COOKIE = "gymops_session"
SESSION_HEADER = "X-Session-Id"
SANDBOXED_BUILTINS = frozenset({"code_execution"})
RAW_BODY: web.RequestKey[bytes] = web.RequestKey("raw_body", bytes)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The container's CPU limit (cgroup v2 cpu.max or v1 CFS quota), None when unlimited."""
    try:
        if (root / "cpu.max").exists():
            quota, period = (root / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        if quota_us <= 0:
            return None
        return quota_us / int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a container CPU limit."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = cgroup_cpu_limit()
    if limit is not None:
        return max(1, min(cores or 1, math.ceil(limit)))
    return max(1, cores or 1)


@dataclass(frozen=True)
class VerifierSettings:
    """What the server verifies with, and its limits."""

    builtin: str
    config: dict[str, Any] = field(default_factory=dict)
    workers: int = field(default_factory=available_cpus)
    timeout_seconds: float = 60.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_sessions: int = 100_000
    max_batch: int = 16
    tool_timeout_seconds: float = 60.0
    body_timeout_seconds: float = 30.0
    """A request body not received within this time is answered 408 and its connection closed."""
    idle_timeout_seconds: float = 75.0
    """A connection with no complete request for this long is closed (slow or stalled headers)."""

    def __post_init__(self) -> None:
        """ValueError for a sandboxed verifier's limits out of range (before serving anything)."""
        if self.builtin in SANDBOXED_BUILTINS:
            from gym_operator.verify.builtins.code_execution import limits_from

            try:
                limits_from(self.config)
            except VerifierError as exc:
                raise ValueError(str(exc)) from None


def _outcome(result: VerifyResult) -> dict[str, Any]:
    return {
        "reward": float(result.reward),
        "components": {k: float(v) for k, v in result.components.items()},
        "details": result.details,
    }


def run_check(builtin: str, task: dict[str, Any], text: str, config: dict[str, Any]) -> dict:
    """Run one check (in a pool process); returns a JSON-able outcome or {"error": reason}."""
    try:
        return _outcome(get_verifier(builtin)(task, text, config))  # type: ignore[arg-type]
    except VerifierError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a verifier bug on an odd row is a failure row, not a dead server
        return {"error": f"verifier raised {type(exc).__name__}: {exc}"}


def run_batch(
    builtin: str, items: list[tuple[dict[str, Any], str]], config: dict[str, Any]
) -> list[dict]:
    """Run several checks in one pool call (fewer round trips under load)."""
    return [run_check(builtin, task, text, config) for task, text in items]


def _init_worker(isolation: sandbox.Isolation | None) -> None:
    if isolation is not None:
        sandbox.preset_isolation(isolation)


def _warm_up(builtin: str) -> int:
    get_verifier(builtin)
    return os.getpid()


class PoolManager:
    """The process pool, fed in small batches; recreated when a worker dies or gets stuck.

    Requests queue here; up to two batches per worker are in the pool at once, each taking what
    queued up meanwhile (at most `max_batch`), so under load a pool round trip serves many
    requests and at low load a request goes alone, without waiting.
    """

    def __init__(
        self,
        workers: int,
        builtin: str,
        config: dict[str, Any],
        max_batch: int,
        isolation: sandbox.Isolation | None = None,
    ) -> None:
        self.workers = workers
        self.builtin = builtin
        self.config = config
        self.max_batch = max_batch
        self.isolation = isolation
        self.restarts = 0
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["gym_operator.verify.builtins"])
        self.pool = self._new_pool()
        self._queue: list[tuple[dict[str, Any], str, asyncio.Future[dict[str, Any]]]] = []
        self._in_pool = 0
        self.in_flight = 0

    async def check(self, task: dict[str, Any], text: str) -> dict[str, Any]:
        """The outcome of one check; BrokenProcessPool when its worker died."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((task, text, future))
        self._dispatch()
        self.in_flight += 1
        try:
            return await future
        finally:
            self.in_flight -= 1

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        resubmitted = False
        while self._queue and self._in_pool < 2 * self.workers:
            share = -(-len(self._queue) // (2 * self.workers - self._in_pool))
            batch = self._queue[: min(self.max_batch, share)]
            del self._queue[: len(batch)]
            live = [(task, text, fut) for task, text, fut in batch if not fut.done()]
            if not live:
                continue
            pool = self.pool
            items = [(task, text) for task, text, _ in live]
            try:
                call = loop.run_in_executor(pool, run_batch, self.builtin, items, self.config)
            except (BrokenProcessPool, RuntimeError) as exc:  # a worker died while idle
                self.recycle(pool, f"submitting failed: {exc}")
                if resubmitted:
                    for _, _, future in live:
                        future.set_exception(BrokenProcessPool(str(exc)))
                else:  # nothing ran yet: the batch goes to the new pool
                    self._queue[:0] = live
                    resubmitted = True
                continue
            self._in_pool += 1
            call.add_done_callback(lambda done, b=live, p=pool: self._finish(done, b, p))

    def _finish(
        self,
        done: asyncio.Future[list[dict]],
        batch: list[tuple[dict[str, Any], str, asyncio.Future[dict[str, Any]]]],
        pool: ProcessPoolExecutor,
    ) -> None:
        self._in_pool -= 1
        error = done.exception() if not done.cancelled() else BrokenProcessPool("cancelled")
        if isinstance(error, BrokenProcessPool):
            self.recycle(pool, "a pool worker died")
        for index, (_, _, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result()[index])
        self._dispatch()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self.isolation,),
        )

    async def warm_up(self) -> None:
        """Start every worker and import the verifier in it before the first request."""
        loop = asyncio.get_running_loop()
        calls = [
            loop.run_in_executor(self.pool, _warm_up, self.builtin) for _ in range(self.workers)
        ]
        await asyncio.gather(*calls)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for /health and tests)."""
        processes = getattr(self.pool, "_processes", None) or {}
        return sorted(processes)

    def recycle(self, pool: ProcessPoolExecutor, reason: str) -> None:
        """Replace `pool` (once, however many requests saw it fail) and kill its workers."""
        if pool is not self.pool:
            return
        log.warning("verifier pool recreated: %s", reason)
        processes = list((getattr(pool, "_processes", None) or {}).values())
        self.pool = self._new_pool()
        self.restarts += 1
        metrics.VERIFIER_POOL_RESTARTS.inc()
        for process in processes:
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the workers."""
        self.pool.shutdown(wait=False, cancel_futures=True)


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
POOL_KEY: web.AppKey[PoolManager] = web.AppKey("pool", PoolManager)
SESSIONS_KEY: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
HTTP_KEY: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
STATE_KEY: web.AppKey[dict[str, Any]] = web.AppKey("verifier_state", dict)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def read_json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or the error answer (400 / 413) naming what is wrong."""
    limit = request.app[SETTINGS_KEY].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _error(413, f"body of {request.content_length} bytes exceeds {limit} bytes")
    seconds = request.app[SETTINGS_KEY].body_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body exceeds {limit} bytes")
    except TimeoutError:
        answer = _error(408, f"body not received within {seconds:g} s")
        answer.force_close()
        return answer
    if not raw.strip():
        return _error(400, "body is empty; expected a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not JSON: {exc}")
    except RecursionError:
        return _error(400, "body is not JSON: nested too deeply")
    if not isinstance(body, dict):
        return _error(400, f"body must be a JSON object, got {type(body).__name__}")
    request[RAW_BODY] = raw
    return body


def answer_bytes(raw: bytes, body: dict[str, Any], extra: dict[str, Any]) -> bytes:
    """The request body plus `extra` fields, as JSON: the raw bytes spliced, not re-encoded.

    Falls back to encoding the whole object when the body is not plain UTF-8 JSON text or
    already has one of the fields.
    """
    text = raw.strip()
    if text[:1] != b"{" or text[-1:] != b"}" or not body or any(k in body for k in extra):
        return json.dumps({**body, **extra}, default=str).encode()
    return text[:-1] + b", " + json.dumps(extra, default=str)[1:].encode()


def _bad_response_field(body: dict[str, Any]) -> str | None:
    """What makes the body's `response` unusable, naming the field; None when it is usable."""
    response = body.get("response")
    if not isinstance(response, dict):
        return "body needs a `response` object (the Responses-API response to score)"
    if "output" not in response:
        return "`response.output` is missing (the list of output items)"
    output = response["output"]
    if not isinstance(output, list):
        return "`response.output` must be a list of output items"
    for index, item in enumerate(output):
        if not isinstance(item, dict):
            return "`response.output` items must be objects"
        problem = _bad_content(item.get("content"))
        if problem:
            return f"`response.output[{index}].content{problem[0]}` {problem[1]}"
    return None


def _bad_content(content: Any) -> tuple[str, str] | None:
    """(path below `content`, what is wrong) for content that is neither text nor parts."""
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return "", f"must be a list of parts, got {type(content).__name__}"
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            return f"[{index}]", f"must be an object, got {type(part).__name__}"
        if part.get("text") is not None and not isinstance(part["text"], str):
            return f"[{index}].text", f"must be a string, got {type(part['text']).__name__}"
    return None


async def _score(request: web.Request, task: dict[str, Any], text: str) -> dict[str, Any]:
    """Run the check (pool or event loop) under the timeout; raises TimeoutError/BrokenPool."""
    settings = request.app[SETTINGS_KEY]
    check = get_verifier(settings.builtin)
    if is_async_check(check):
        context = VerifyContext(http=request.app[HTTP_KEY], state=request.app[STATE_KEY])
        try:
            async with asyncio.timeout(settings.timeout_seconds):
                result = await check(task, text, settings.config, context)  # type: ignore[call-arg]
        except VerifierError as exc:
            return {"error": str(exc)}
        except TimeoutError:
            raise
        except Exception as exc:  # a verifier bug on an odd row is a failure row, not a 500
            return {"error": f"verifier raised {type(exc).__name__}: {exc}"}
        return _outcome(result)  # type: ignore[arg-type]
    manager = request.app[POOL_KEY]
    pool = manager.pool
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            outcome = await manager.check(task, text)
    except TimeoutError:
        manager.recycle(pool, "a check exceeded the request timeout")
        raise
    return await _second_opinion(request, task, text, outcome)


async def _second_opinion(
    request: web.Request, task: dict[str, Any], text: str, outcome: dict[str, Any]
) -> dict[str, Any]:
    """The verifier's registered fallback (with its own timeouts) on a pool outcome, if any."""
    settings = request.app[SETTINGS_KEY]
    fallback = get_fallback(settings.builtin)
    if fallback is None or "error" in outcome:
        return outcome
    context = VerifyContext(http=request.app[HTTP_KEY], state=request.app[STATE_KEY])
    try:
        return await fallback(task, text, settings.config, context, outcome)
    except VerifierError as exc:
        return {"error": str(exc)}


async def verify(request: web.Request) -> web.Response:
    """Score the body's `response` against its task fields; answer the body plus `reward`."""
    settings = request.app[SETTINGS_KEY]
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        metrics.VERIFIER_VERIFICATIONS.labels("bad_request").inc()
        return body
    problem = _bad_response_field(body)
    if problem:
        metrics.VERIFIER_VERIFICATIONS.labels("bad_request").inc()
        return _error(400, problem)
    text = response_text(body["response"])
    if settings.config.get("stripReasoning", True):
        text = strip_reasoning(text)
    task = {k: v for k, v in body.items() if k != "response"}
    started = time.monotonic()
    metrics.VERIFIER_IN_FLIGHT.inc()
    try:
        outcome = await _score(request, task, text)
    except TimeoutError:
        metrics.VERIFIER_VERIFICATIONS.labels("timeout").inc()
        return _error(504, f"verification exceeded {settings.timeout_seconds} s")
    except BrokenProcessPool:
        metrics.VERIFIER_VERIFICATIONS.labels("worker_crash").inc()
        return _error(503, "a verifier worker process died; the pool was recreated, retry")
    finally:
        metrics.VERIFIER_IN_FLIGHT.dec()
        metrics.VERIFIER_CHECK_SECONDS.observe(time.monotonic() - started)
    if "error" not in outcome and not math.isfinite(outcome["reward"]):
        outcome = {"error": f"verifier produced a non-finite reward {outcome['reward']}"}
    if "error" in outcome:
        metrics.VERIFIER_VERIFICATIONS.labels("unscorable").inc()
        return _error(422, outcome["error"])
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
        body = await read_json_object(request)
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
        arguments = await read_json_object(request)
        if isinstance(arguments, web.Response):
            return arguments
        session_id = request.cookies.get(SESSION_COOKIE) or request.headers.get(SESSION_HEADER)
        state = request.app[SESSIONS_KEY].get(session_id)
        try:
            async with asyncio.timeout(settings.tool_timeout_seconds):
                answer = await asyncio.to_thread(tool, arguments, state, settings.config)
        except Exception as exc:  # the model gets a readable error, the server stays up
            metrics.VERIFIER_TOOL_CALLS.labels(name, "error").inc()
            return _error(422, f"tool {name} failed: {type(exc).__name__}: {exc}")
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
        app[POOL_KEY] = PoolManager(
            settings.workers, settings.builtin, settings.config, settings.max_batch, isolation
        )
        app[HTTP_KEY] = aiohttp.ClientSession(trust_env=False)
        await app[POOL_KEY].warm_up()
        yield
        await app[HTTP_KEY].close()
        app[POOL_KEY].shutdown()

    app.cleanup_ctx.append(resources)
    return app


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

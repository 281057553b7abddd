"""A built-in verifier server as a child process with a clean environment (local mode).

The verifier that runs model-written code must hold no secrets: `gymops run` has the policy's API
key and S3 credentials in its environment and memory, so it never serves a built-in verifier
itself. It starts `python -m gym_operator.verify.local_server` with an environment of a few
harmless variables only (PATH, PYTHONPATH, locale, TMPDIR; the LLM judge also gets the one variable
named by its `apiKeyEnv`), sends the settings on the child's stdin, reads the URL the child
prints once it serves on loopback, and stops it on exit. The child also stops when its stdin
closes, so it never outlives the `gymops` process that started it.

Besides HTTP (tools, `/seed_session`, `/verify`), the child answers checks over the same pipes,
without an HTTP hop: after the URL, each stdin line `{"id", "task", "text"}` (the response's
final text) is scored like `POST /verify` (its pool, timeout and fallback) and answered by one
stdout line `{"id", "outcome"}` (reward, components, details, or `error` when unscorable) or
`{"id", "status", "error"}` (504: timed out, 503: a pool worker died).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

log = logging.getLogger(__name__)

PASSED_VARIABLES = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TMPDIR", "TZ")
START_SECONDS = 180.0
STOP_SECONDS = 10.0
LINE_LIMIT = 256 * 1024 * 1024
"""Longest pipe line (a task row plus a response text, both bounded well below this)."""


def child_environment(builtin: str, config: dict[str, Any]) -> dict[str, str]:
    """The child's whole environment: harmless variables, plus the judge's key for the judge."""
    names = list(PASSED_VARIABLES)
    if builtin == "llm_judge":
        names.append(str(config.get("apiKeyEnv", "JUDGE_API_KEY")))
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.setdefault("PATH", os.defpath)
    return env


class CheckFailed(Exception):
    """The child could not answer a check: it timed out (504), lost a worker (503) or ended."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status


class LocalVerifier:
    """The running child: its URL, and checks sent over its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count()
        self._reader = asyncio.ensure_future(self._read_answers())

    async def check(self, task: dict[str, Any], text: str) -> dict[str, Any]:
        """The outcome of one check (`reward`, `components`, `details`, or `error`)."""
        if self._reader.done():
            raise CheckFailed(None, "the verifier process has ended")
        assert self.proc.stdin is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        line = json.dumps({"id": ident, "task": task, "text": text}, default=str)
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            await self.proc.stdin.drain()
            return await future
        except (BrokenPipeError, ConnectionResetError):
            raise CheckFailed(None, "the verifier process has ended") from None
        finally:
            self._pending.pop(ident, None)

    async def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                answer = json.loads(line)
                future = self._pending.get(answer["id"])
                if future is None or future.done():
                    continue
                if "outcome" in answer:
                    future.set_result(answer["outcome"])
                else:
                    future.set_exception(CheckFailed(answer["status"], answer["error"]))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CheckFailed(None, "the verifier process has ended"))

    async def close(self) -> None:
        """Stop the child and the answer reader."""
        await _stop(self.proc)
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def local_verifier_process(
    builtin: str, config: dict[str, Any], timeout_seconds: float
) -> AsyncIterator[LocalVerifier]:
    """Serve `builtin` from a child process on loopback; yields it (URL and pipe checks)."""
    settings = {"builtin": builtin, "config": config, "timeout_seconds": timeout_seconds}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gym_operator.verify.local_server",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=child_environment(builtin, config),
        start_new_session=True,
        limit=LINE_LIMIT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    child: LocalVerifier | None = None
    try:
        proc.stdin.write(json.dumps(settings).encode() + b"\n")
        await proc.stdin.drain()
        async with asyncio.timeout(START_SECONDS):
            line = await proc.stdout.readline()
        url = line.decode().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the built-in verifier {builtin!r} did not start (see its log)")
        log.info("built-in verifier %r serving on %s (pid %d)", builtin, url, proc.pid)
        child = LocalVerifier(proc, url)
        yield child
    finally:
        if child is not None:
            await child.close()
        else:
            await _stop(proc)


@contextlib.asynccontextmanager
async def local_verifier(
    builtin: str, config: dict[str, Any], timeout_seconds: float
) -> AsyncIterator[str]:
    """Serve `builtin` from a child process on loopback; yields its base URL."""
    async with local_verifier_process(builtin, config, timeout_seconds) as child:
        yield child.url


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _serve_until_stdin_closes() -> None:
    from gym_operator.verify.server import VerifierSettings, start_server

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    settings = json.loads(await reader.readline())
    runner, url = await start_server(VerifierSettings(**settings))
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    transport, protocol = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    transport.write(url.encode() + b"\n")
    checks = asyncio.ensure_future(_answer_checks(reader, transport, runner.app))
    try:
        await asyncio.wait(
            [checks, asyncio.ensure_future(stopped.wait())], return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        checks.cancel()
        await runner.cleanup()


async def _answer_checks(
    reader: asyncio.StreamReader, out: asyncio.WriteTransport, app: Any
) -> None:
    """Score every check line until stdin closes; each answer is written when it is ready."""
    tasks: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        request = json.loads(line)
        task = asyncio.ensure_future(_answer_one(request, out, app))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _answer_one(request: dict[str, Any], out: asyncio.WriteTransport, app: Any) -> None:
    from concurrent.futures.process import BrokenProcessPool

    from gym_operator.verify.server import score_answer

    ident = request["id"]
    try:
        outcome = await score_answer(app, request["task"], request["text"])
    except TimeoutError as exc:
        answer = {"id": ident, "status": 504, "error": str(exc)}
    except BrokenProcessPool:
        answer = {"id": ident, "status": 503, "error": "a verifier worker process died; retry"}
    else:
        answer = {"id": ident, "outcome": outcome}
    out.write(json.dumps(answer, default=str).encode() + b"\n")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_serve_until_stdin_closes())

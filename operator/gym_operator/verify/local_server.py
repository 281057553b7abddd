"""A built-in verifier server as a child process with a clean environment (local mode).

The verifier that runs model-written code must hold no secrets: `gymops run` has the policy's API
key and S3 credentials in its environment and memory, so it never serves a built-in verifier
itself. It starts `python -m gym_operator.verify.local_server` with an environment of a few
harmless variables only (PATH, PYTHONPATH, locale, TMPDIR; the LLM judge also gets the one variable
named by its `apiKeyEnv`), sends the settings on the child's stdin, reads the URL the child
prints once it serves on loopback, and stops it on exit. The child also stops when its stdin
closes, so it never outlives the `gymops` process that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
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


def child_environment(builtin: str, config: dict[str, Any]) -> dict[str, str]:
    """The child's whole environment: harmless variables, plus the judge's key for the judge."""
    names = list(PASSED_VARIABLES)
    if builtin == "llm_judge":
        names.append(str(config.get("apiKeyEnv", "JUDGE_API_KEY")))
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.setdefault("PATH", os.defpath)
    return env


@contextlib.asynccontextmanager
async def local_verifier(
    builtin: str, config: dict[str, Any], timeout_seconds: float
) -> AsyncIterator[str]:
    """Serve `builtin` from a child process on loopback; yields its base URL."""
    settings = {"builtin": builtin, "config": config, "timeout_seconds": timeout_seconds}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gym_operator.verify.local_server",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=child_environment(builtin, config),
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(json.dumps(settings).encode() + b"\n")
        await proc.stdin.drain()
        async with asyncio.timeout(START_SECONDS):
            line = await proc.stdout.readline()
        url = line.decode().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the built-in verifier {builtin!r} did not start (see its log)")
        log.info("built-in verifier %r serving on %s (pid %d)", builtin, url, proc.pid)
        yield url
    finally:
        await _stop(proc)


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
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    settings = json.loads(await reader.readline())
    runner, url = await start_server(VerifierSettings(**settings))
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    closed = asyncio.ensure_future(reader.read())
    try:
        await asyncio.wait(
            [closed, asyncio.ensure_future(stopped.wait())], return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_serve_until_stdin_closes())

"""Built-in verifiers in local mode without an HTTP hop: in this process, or over pipes.

This is the one module of rollout/ that reaches into verify/ (an import-linter contract keeps
rollout/, verify/ and data/ apart otherwise): local mode runs the built-ins in or beside its own
process, where a pod would send them to the verifier Service.

Checks that are cheap, run no model-written code and need no tools or network are called in this
process: exact match, regex, multiple choice, JSON schema, instruction following. Every other
built-in (math, code execution, the LLM judge, verifiers with tools) runs in the verifier child
with a clean environment (`gym_operator.verify.local_server`), which holds no secret of this
process; its checks go over the child's pipes (its pool, timeout and fallback, as `/verify`),
its tools and sessions over HTTP. Both answer as the verifier server would (same text
extraction, same reward fields, a check that cannot score is `verifier_unscorable`), behind the
VerifierClient interface the generator already uses.

In this process the server's per-request timeout does not apply: a check runs to its end on the
event loop. Each end is near: our own patterns take time linear in the answer, and patterns
from a config or task (regex, json_schema) stop after one CPU second per check
(`verify.pattern_deadline`), as a check that cannot score (`verifier_unscorable`). A task that
carries tools still gets a tool loop: its `/seed_session` and tool calls go to an empty server
on loopback, which answers 404 to all of them (no sessions, unknown tools), as the verifier
server does for a verifier that defines no tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from gym_operator.protocol import verify as protocol
from gym_operator.protocol.failures import FailureClass
from gym_operator.rollout.retry import RequestError
from gym_operator.rollout.verifier_client import VerifierClient
from gym_operator.verify.base import get_tools, is_async_check, response_text, strip_reasoning
from gym_operator.verify.base import get_verifier as get_check
from gym_operator.verify.local_server import CheckFailed, LocalVerifier, local_verifier_process
from gym_operator.verify.pool import run_check

INLINE_BUILTINS = frozenset(
    {"exact_match", "regex", "mcqa", "json_schema", "instruction_following"}
)
"""Checks cheap enough to run on the event loop (microseconds to a millisecond a rollout)."""


def runs_inline(builtin: str | None) -> bool:
    """Whether `builtin` is verified in this process rather than by a verifier server."""
    if builtin not in INLINE_BUILTINS:
        return False
    return not get_tools(builtin) and not is_async_check(get_check(builtin))


def final_text(response: dict[str, Any], strip: bool) -> str:
    """The text a check scores: the response's output text, reasoning removed when `strip`."""
    try:
        text = response_text(response)
    except (AttributeError, TypeError) as exc:
        raise RequestError(
            FailureClass.MALFORMED, f"response has no readable text: {exc}"
        ) from None
    return strip_reasoning(text) if strip else text


def verdict(outcome: dict[str, Any]) -> protocol.Verdict:
    """A check's outcome as the verifier server's answer would read; a
    `verifier_unscorable` RequestError when it could not score (as the server's 422)."""
    if "error" not in outcome and not math.isfinite(outcome["reward"]):
        outcome = {"error": f"verifier produced a non-finite reward {outcome['reward']}"}
    if "error" in outcome:
        raise RequestError(FailureClass.VERIFIER_UNSCORABLE, str(outcome["error"]), status=422)
    details = outcome.get("details")
    components = outcome.get("components") or {}
    return protocol.Verdict(
        float(outcome["reward"]),
        {str(k): float(v) for k, v in components.items()} or None,
        {"verifier_details": details} if details else {},
    )


class InlineVerifier(VerifierClient):
    """Scores a rollout by calling the built-in check directly; the answer a server would give."""

    def __init__(
        self,
        builtin: str,
        config: dict[str, Any],
        session: aiohttp.ClientSession,
        tools_url: str,
    ) -> None:
        super().__init__(session, tools_url)
        self.builtin = builtin
        self.config = config
        self.strip = bool(config.get("stripReasoning", True))
        self.url = f"the built-in {builtin} verifier (in this process)"

    async def verify(
        self,
        task: dict[str, Any],
        response: dict[str, Any],
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> protocol.Verdict | protocol.Masked:
        """What the check says of one rollout; `verifier_unscorable` when it cannot score."""
        text = final_text(response, self.strip)
        return verdict(run_check(self.builtin, task, text, self.config))


class ChildVerifier(VerifierClient):
    """Checks sent over the pipes of the clean-environment verifier child (no HTTP hop); its
    tools and sessions stay on its HTTP server."""

    def __init__(
        self, child: LocalVerifier, config: dict[str, Any], session: aiohttp.ClientSession
    ) -> None:
        super().__init__(session, child.url)
        self.child = child
        self.strip = bool(config.get("stripReasoning", True))

    async def verify(
        self,
        task: dict[str, Any],
        response: dict[str, Any],
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> protocol.Verdict | protocol.Masked:
        """What the child's check says of one rollout; RequestError with its class on failure."""
        text = final_text(response, self.strip)
        try:
            async with asyncio.timeout(timeout):
                outcome = await self.child.check(task, text)
        except TimeoutError:
            raise RequestError(FailureClass.TIMEOUT, f"no answer within {timeout:g}s") from None
        except CheckFailed as exc:
            error_class = FailureClass.CONNECTION if exc.status is None else FailureClass.HTTP_5XX
            raise RequestError(error_class, str(exc), status=exc.status) from None
        return verdict(outcome)


@contextlib.asynccontextmanager
async def no_tools_server() -> AsyncIterator[str]:
    """An empty server on loopback (every path 404) for the tool loop of tasks with tools."""
    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def open_builtin(
    builtin: str, config: dict[str, Any], timeout: float, session: aiohttp.ClientSession
) -> AsyncIterator[VerifierClient]:
    """A built-in verifier for local mode: called in this process when cheap, else run by a
    child process started here."""
    if runs_inline(builtin):
        async with no_tools_server() as tools_url:
            yield InlineVerifier(builtin, config, session, tools_url)
        return
    # a separate process with a clean environment: it runs model-written code, so it must not
    # hold this process's API key and S3 credentials
    async with local_verifier_process(builtin, config, timeout) as child:
        yield ChildVerifier(child, config, session)


STARTED_HERE = (InlineVerifier, ChildVerifier)
"""Verifiers that answer as soon as they exist (nothing to wait for)."""

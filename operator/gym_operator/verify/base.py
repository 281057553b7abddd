"""The verifier contract: a function from (task row, response) to a VerifyResult, and a registry.

A built-in verifier is a plain, picklable function `check(task, response_text, config)`; it runs
in the verifier server's process pool. Verifiers that only wait on the network (the LLM judge)
register an `async` check instead, `check(task, response_text, config, context)`, which runs on
the server's event loop with the server's shared HTTP session. Raising VerifierError means
"could not verify" (a failure row), never a 0.0 reward.

A verifier may also define tools (`register_tool`): plain functions
`tool(arguments, session_state, config) -> dict` served at `POST /<tool_name>`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gym_operator.protocol.response import response_text as response_text  # re-exported
from gym_operator.verify import builtins

if TYPE_CHECKING:
    import aiohttp


class VerifierError(Exception):
    """The verifier could not score this response (bad task fields, judge down, ...)."""


@dataclass(frozen=True)
class VerifyResult:
    """A score in [0, 1] (or any float for continuous verifiers) and optional components."""

    reward: float
    components: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyContext:
    """What an async check may use: the server's shared HTTP client session and its state."""

    http: aiohttp.ClientSession
    state: dict[str, Any] = field(default_factory=dict)
    """Lives as long as the server (e.g. a judge's call budget)."""


CheckFunction = Callable[[dict[str, Any], str, dict[str, Any]], VerifyResult]
AsyncCheckFunction = Callable[
    [dict[str, Any], str, dict[str, Any], VerifyContext], Awaitable[VerifyResult]
]
# A second opinion on a pool check's outcome, asked on the event loop (the math verifier's judge).
FallbackFunction = Callable[
    [dict[str, Any], str, dict[str, Any], VerifyContext, dict[str, Any]],
    Awaitable[dict[str, Any]],
]
ToolFunction = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]

_REGISTRY: dict[str, CheckFunction | AsyncCheckFunction] = {}
_TOOLS: dict[str, dict[str, ToolFunction]] = {}
_FALLBACKS: dict[str, FallbackFunction] = {}


def register(
    name: str,
) -> Callable[[CheckFunction | AsyncCheckFunction], CheckFunction | AsyncCheckFunction]:
    """Register a built-in verifier under `name` (the RolloutJob's verifier.builtin)."""

    def wrap(func: Any) -> Any:
        _REGISTRY[name] = func
        return func

    return wrap


def register_tool(verifier: str, tool_name: str) -> Callable[[ToolFunction], ToolFunction]:
    """Register `tool_name` as a tool of `verifier`, served at `POST /<tool_name>`."""

    def wrap(func: ToolFunction) -> ToolFunction:
        _TOOLS.setdefault(verifier, {})[tool_name] = func
        return func

    return wrap


def register_fallback(verifier: str) -> Callable[[FallbackFunction], FallbackFunction]:
    """Register an async second opinion on `verifier`'s outcomes (it may return them unchanged).

    It runs on the server's event loop after the pool check, gets the outcome (`reward`,
    `components`, `details`) and returns the outcome to answer; VerifierError is a failure row.
    """

    def wrap(func: FallbackFunction) -> FallbackFunction:
        _FALLBACKS[verifier] = func
        return func

    return wrap


def get_fallback(name: str) -> FallbackFunction | None:
    """The second opinion registered for a built-in, if any."""
    builtins.load(name)
    return _FALLBACKS.get(name)


def _known_names() -> list[str]:
    """The built-ins' names and any other registered verifier, sorted."""
    return sorted({*builtins.MODULES, *_REGISTRY})


def get_verifier(name: str) -> CheckFunction | AsyncCheckFunction:
    """The check function of a built-in verifier; KeyError names the known ones."""
    builtins.load(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown verifier {name!r}; built-ins: {_known_names()}") from None


def get_tools(name: str) -> dict[str, ToolFunction]:
    """The tools a built-in verifier defines (may be empty)."""
    builtins.load(name)
    return dict(_TOOLS.get(name, {}))


def is_async_check(func: Any) -> bool:
    """True when the check is a coroutine function (runs on the event loop, not the pool)."""
    return inspect.iscoroutinefunction(func)


_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """The final answer part of a text: `<think>` blocks removed, in time linear in the text.

    Text before a lone `</think>` (the opening tag was in the prompt) is reasoning; an unclosed
    `<think>` means the response ran out inside its reasoning, so the final answer is empty.
    Each tag search starts where the last one ended, and an opening tag without a closing one
    ends the scan, so model text full of tags costs one pass (never a search per tag).
    """
    kept: list[str] = []
    pos = 0
    while (opened := _THINK_OPEN.search(text, pos)) is not None:
        closed = _THINK_CLOSE.search(text, opened.end())
        if closed is None:
            break
        kept.append(text[pos : opened.start()])
        pos = closed.end()
    out = "".join(kept) + text[pos:]
    last_close = max((m.end() for m in _THINK_CLOSE.finditer(out)), default=None)
    if last_close is not None:
        out = out[last_close:]
    unclosed = _THINK_OPEN.search(out)
    if unclosed is not None:
        out = out[: unclosed.start()]
    return out.strip()

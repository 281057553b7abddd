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
    """What an async check may use: the server's shared HTTP client session."""

    http: aiohttp.ClientSession


CheckFunction = Callable[[dict[str, Any], str, dict[str, Any]], VerifyResult]
AsyncCheckFunction = Callable[
    [dict[str, Any], str, dict[str, Any], VerifyContext], Awaitable[VerifyResult]
]
ToolFunction = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], dict[str, Any]]

_REGISTRY: dict[str, CheckFunction | AsyncCheckFunction] = {}
_TOOLS: dict[str, dict[str, ToolFunction]] = {}


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


def _load_builtins() -> None:
    from gym_operator.verify import builtins  # noqa: F401 - registers the built-ins


def get_verifier(name: str) -> CheckFunction | AsyncCheckFunction:
    """The check function of a built-in verifier; KeyError names the known ones."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown verifier {name!r}; built-ins: {sorted(_REGISTRY)}") from None


def get_tools(name: str) -> dict[str, ToolFunction]:
    """The tools a built-in verifier defines (may be empty)."""
    _load_builtins()
    return dict(_TOOLS.get(name, {}))


def is_async_check(func: Any) -> bool:
    """True when the check is a coroutine function (runs on the event loop, not the pool)."""
    return inspect.iscoroutinefunction(func)


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """The final answer part of a text: `<think>` blocks removed.

    Text before a lone `</think>` (the opening tag was in the prompt) is reasoning; an unclosed
    `<think>` means the response ran out inside its reasoning, so the final answer is empty.
    """
    out = _THINK_BLOCK.sub("", text)
    lowered = out.lower()
    if "</think>" in lowered:
        out = out[lowered.rindex("</think>") + len("</think>") :]
        lowered = out.lower()
    if "<think>" in lowered:
        out = out[: lowered.index("<think>")]
    return out.strip()

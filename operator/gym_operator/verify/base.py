"""The verifier contract: a function from (task row, response) to a VerifyResult, and a registry.

A built-in verifier is a plain, picklable function `check(task, response_text, config)`; it runs
in the verifier server's process pool. Raising VerifierError means "could not verify" (a failure
row), never a 0.0 reward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class VerifierError(Exception):
    """The verifier could not score this response (bad task fields, judge down, ...)."""


@dataclass(frozen=True)
class VerifyResult:
    """A score in [0, 1] (or any float for continuous verifiers) and optional components."""

    reward: float
    components: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


CheckFunction = Callable[[dict[str, Any], str, dict[str, Any]], VerifyResult]
_REGISTRY: dict[str, CheckFunction] = {}


def register(name: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a built-in verifier under `name` (the RolloutJob's verifier.builtin)."""

    def wrap(func: CheckFunction) -> CheckFunction:
        _REGISTRY[name] = func
        return func

    return wrap


def get_verifier(name: str) -> CheckFunction:
    """The check function of a built-in verifier; KeyError names the known ones."""
    from gym_operator.verify import builtins  # noqa: F401 - registers the built-ins

    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown verifier {name!r}; built-ins: {sorted(_REGISTRY)}") from None


def response_text(response: dict[str, Any]) -> str:
    """The final assistant text of a Responses-API `response` object (output_text parts)."""
    texts: list[str] = []
    for item in response.get("output") or []:
        if item.get("type") == "message" and item.get("role", "assistant") == "assistant":
            for part in item.get("content") or []:
                if part.get("type") in ("output_text", "text") and part.get("text"):
                    texts.append(part["text"])
    return "".join(texts)

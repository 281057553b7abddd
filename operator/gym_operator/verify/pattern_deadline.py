"""Patterns from a config or task, matched against model text with a CPU-time budget per check.

A pattern with nested or stacked quantifiers can backtrack for hours on a few dozen characters
written to provoke it, and the policy being trained writes whatever earns reward. Patterns are
therefore compiled and matched with the `regex` package (`re`-compatible in its default
VERSION0 mode), whose `timeout=` stops a match that runs too long; the check then cannot score
the answer (a VerifierError, never a 0.0 reward). The `regex` package answers the classic
nested-quantifier bait (`^(a+)+$`) at once; the budget is for what its safeguards miss.

The budget is CPU time of this process, as the `regex` package measures it, so a busy machine
does not turn a fair pattern into a failure. All matches of one check share it (`budget()`):
a JSON answer with a hundred thousand strings cannot spend one budget on each.

A pattern must first compile with Python's `re`, which keeps the accepted syntax and the error
messages of the verifiers that used `re`. The `regex` package expands fixed repeat counts when
it compiles (`(?:a{3000}){3000}` took 2.4 GB and 14 s), so a pattern whose fixed repeats
multiply past MAX_EXPANSION is refused before it is compiled.
"""

from __future__ import annotations

import contextlib
import re
import re._constants as sre  # the parse tree's opcodes; Python >= 3.11
import re._parser as sre_parse
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

from gym_operator.verify.base import VerifierError

PATTERN_SECONDS = 1.0
"""CPU seconds all pattern matches of one check may take together.

A fair pattern over the longest answer a check reads (1,000,000 characters) takes
milliseconds, so this leaves a wide margin for honest work; a hostile answer costs one second
of a pool worker (or of local mode's event loop) instead of its whole timeout, or forever.
"""

MAX_EXPANSION = 10_000
"""Items a pattern may hold once its fixed repeat counts are multiplied out (about 270 bytes
each in the `regex` package, so under 3 MB a pattern)."""

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


@dataclass
class Budget:
    """CPU seconds left to the matches of one check."""

    left: float = PATTERN_SECONDS


_BUDGET: ContextVar[Budget | None] = ContextVar("pattern_budget", default=None)


@contextlib.contextmanager
def budget(seconds: float = PATTERN_SECONDS) -> Iterator[None]:
    """All matches inside share `seconds` of CPU time (one check's budget)."""
    token = _BUDGET.set(Budget(seconds))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def shown(pattern: str) -> str:
    """The pattern for an error message, cut to a readable length."""
    return repr(pattern) if len(pattern) <= 200 else repr(pattern[:200]) + "..."


def expansion(items: Any) -> int:
    """How many items a parsed pattern holds once fixed repeat counts are multiplied out
    (an over-estimate: alternatives are added, variable repeats count their minimum)."""
    total = 0
    for op, arg in items:
        if op in _REPEATS:
            total += max(arg[0], 1) * expansion(arg[2])
        elif op is sre.SUBPATTERN:
            total += expansion(arg[3])
        elif op is sre.BRANCH:
            total += sum(expansion(branch) for branch in arg[1])
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            total += expansion(arg[1])
        elif op is sre.ATOMIC_GROUP:
            total += expansion(arg)
        elif op is sre.GROUPREF_EXISTS:
            total += expansion(arg[1]) + (expansion(arg[2]) if arg[2] else 0)
        else:
            total += 1
    return total


@lru_cache(maxsize=64)
def compile_pattern(pattern: str, flags: int = 0) -> regex.Pattern[str]:
    """`pattern` compiled for timed matching; VerifierError when invalid or too large."""
    try:
        re.compile(pattern, flags)
        size = expansion(sre_parse.parse(pattern, flags))
        if size > MAX_EXPANSION:
            raise VerifierError(
                f"pattern {shown(pattern)} is too large: its repeats expand to {size} items"
                f" (at most {MAX_EXPANSION})"
            )
        return regex.compile(pattern, flags, cache_pattern=False)
    except (re.error, regex.error) as exc:
        raise VerifierError(f"invalid pattern {shown(pattern)}: {exc}") from None


def timed_match(compiled: regex.Pattern[str], text: str, *, full: bool = False) -> Any:
    """`compiled.search(text)` (or `fullmatch` when `full`) within the check's budget (a whole
    PATTERN_SECONDS outside `budget()`); VerifierError when it runs out."""
    shared = _BUDGET.get()
    left = PATTERN_SECONDS if shared is None else shared.left
    started = time.process_time()
    try:
        if left <= 0:
            raise TimeoutError
        if full:
            return compiled.fullmatch(text, timeout=left)
        return compiled.search(text, timeout=left)
    except TimeoutError:
        raise VerifierError(
            f"pattern {shown(compiled.pattern)} took too long on this answer"
            f" (over {PATTERN_SECONDS:g} s of CPU): it cannot score it"
        ) from None
    finally:
        if shared is not None:
            shared.left -= time.process_time() - started


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches anywhere in `text`, within the check's budget."""
    return timed_match(compile_pattern(pattern), text) is not None

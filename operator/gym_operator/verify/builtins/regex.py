"""`regex`: the response matches a regular expression from the config or the task.

Config (all optional):

- `pattern` (default —): the pattern; when absent, the task field named by `patternField` holds it
- `patternField` (default `pattern`): task field holding the pattern
- `mode` (default `search`): `search`: matches anywhere; `full`: the whole (stripped) response must
  match
- `flags` (default `[]`): any of `IGNORECASE`, `MULTILINE`, `DOTALL`
- `answerField` (default —): when set, the match must also capture the task's answer: group
  `answer` or group 1 equals this field (stripped)

Reward: 1.0 on a match (and an equal capture, when `answerField` is set), else 0.0. A missing,
invalid or oversized pattern is a VerifierError, and so is a match that runs past its CPU budget
on this answer (`pattern_deadline.PATTERN_SECONDS`): backtracking bait is never a reward.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import regex

from gym_operator.verify.base import VerifierError, VerifyResult, register
from gym_operator.verify.pattern_deadline import compile_pattern as compile_timed
from gym_operator.verify.pattern_deadline import timed_match

FLAGS = {"IGNORECASE": regex.IGNORECASE, "MULTILINE": regex.MULTILINE, "DOTALL": regex.DOTALL}
MAX_RESPONSE_CHARS = 1_000_000


def compile_pattern(task: dict[str, Any], config: dict[str, Any]) -> regex.Pattern[str]:
    """The configured pattern with its flags; VerifierError names what is wrong."""
    pattern = config.get("pattern")
    if pattern is None:
        field = config.get("patternField", "pattern")
        pattern = task.get(field)
        if not isinstance(pattern, str) or not pattern:
            raise VerifierError(f"no config.pattern and task has no {field!r} string field")
    unknown = [f for f in config.get("flags", []) if f not in FLAGS]
    if unknown:
        raise VerifierError(f"config.flags {unknown} not among {sorted(FLAGS)}")
    flags = reduce(lambda acc, f: acc | FLAGS[f], config.get("flags", []), 0)
    return compile_timed(pattern, flags)


def captured(match: regex.Match[str]) -> str | None:
    """The `answer` group, else group 1, else None."""
    if "answer" in match.re.groupindex:
        return match.group("answer")
    return match.group(1) if match.re.groups else None


@register("regex")
def check_regex(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 when the response matches (and captures the answer, when configured)."""
    compiled = compile_pattern(task, config)
    mode = config.get("mode", "search")
    if mode not in ("search", "full"):
        raise VerifierError(f"config.mode {mode!r} is not one of ('search', 'full')")
    text = text[:MAX_RESPONSE_CHARS]
    match = timed_match(compiled, text.strip() if mode == "full" else text, full=mode == "full")
    ok = match is not None
    answer_field = config.get("answerField")
    if ok and answer_field:
        if task.get(answer_field) is None:
            raise VerifierError(f"task has no {answer_field!r} field")
        group = captured(match)  # type: ignore[arg-type]
        ok = group is not None and group.strip() == str(task[answer_field]).strip()
    return VerifyResult(reward=1.0 if ok else 0.0)

"""`math`: answer equivalence with math-verify (boxed, "#### n" and plain final answers)."""

from __future__ import annotations

import re
from typing import Any

from math_verify import parse, verify

from gym_operator.verify.base import VerifierError, VerifyResult, register

_GSM8K_ANSWER = re.compile(r"####\s*([^\n]+)")


def extract_candidate(text: str) -> str:
    """The part of the response that holds the final answer ("#### n" wins when present)."""
    found = _GSM8K_ANSWER.findall(text)
    return f"${found[-1].strip()}$" if found else text


@register("math")
def check_math(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 when the response's final answer equals `expected_answer`, else 0.0."""
    field = config.get("answerField", "expected_answer")
    if task.get(field) in (None, ""):
        raise VerifierError(f"task has no {field!r} field")
    gold = parse(f"${task[field]}$" if "\\boxed" not in str(task[field]) else str(task[field]))
    if not gold:
        raise VerifierError(f"could not parse expected answer {task[field]!r}")
    answer = parse(extract_candidate(text)) if text.strip() else []
    ok = bool(answer) and verify(gold, answer)
    return VerifyResult(reward=1.0 if ok else 0.0, details={"extracted": [str(a) for a in answer]})

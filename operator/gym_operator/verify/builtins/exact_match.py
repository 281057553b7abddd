"""`exact_match`: the response equals `expected_answer` after normalisation."""

from __future__ import annotations

import re
from typing import Any

from gym_operator.verify.base import VerifierError, VerifyResult, register


def normalise(text: str, config: dict[str, Any]) -> str:
    """Apply the configured normalisation: strip, case, whitespace, punctuation."""
    out = text.strip()
    if config.get("caseInsensitive", True):
        out = out.lower()
    if config.get("collapseWhitespace", True):
        out = re.sub(r"\s+", " ", out)
    if config.get("ignorePunctuation", False):
        out = re.sub(r"[^\w\s]", "", out)
    return out


@register("exact_match")
def check_exact_match(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 when the normalised response equals the normalised expected answer."""
    field = config.get("answerField", "expected_answer")
    if field not in task:
        raise VerifierError(f"task has no {field!r} field")
    expected = normalise(str(task[field]), config)
    return VerifyResult(reward=1.0 if normalise(text, config) == expected else 0.0)

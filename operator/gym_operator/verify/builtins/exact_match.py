"""`exact_match`: the response equals `expected_answer` (or one of a list) after normalisation.

Config (all optional):

- `answerField` (default `expected_answer`): task field: a string or a list of accepted strings
- `caseInsensitive` (default `true`): compare lower-cased
- `collapseWhitespace` (default `true`): runs of whitespace count as one space; ends stripped
- `ignorePunctuation` (default `false`): drop punctuation before comparing
- `stripArticles` (default `false`): drop English articles a/an/the (SQuAD normalisation)
- `stripThousandsSeparators` (default `false`): 1,000 -> 1000
- `mode` (default `full`): `full`: whole response equals; `contains`: the answer appears in the
  response as a whole word sequence; `lastLine`: the last non-empty line equals

Reward: 1.0 on a match, else 0.0 (an empty response is 0.0). A task without the answer field is
a VerifierError.
"""

from __future__ import annotations

import re
from typing import Any

from gym_operator.verify.base import VerifierError, VerifyResult, register

MODES = ("full", "contains", "lastLine")


def normalise(text: str, config: dict[str, Any]) -> str:
    """Apply the configured normalisation: case, punctuation, articles, separators, whitespace."""
    out = text.strip()
    if config.get("caseInsensitive", True):
        out = out.lower()
    if config.get("stripThousandsSeparators", False):
        out = re.sub(r"(?<=\d),(?=\d{3}\b)", "", out)
    if config.get("ignorePunctuation", False):
        out = re.sub(r"[^\w\s]", "", out)
    if config.get("stripArticles", False):
        out = re.sub(r"\b(a|an|the)\b", " ", out, flags=re.IGNORECASE)
    if config.get("collapseWhitespace", True):
        out = re.sub(r"\s+", " ", out).strip()
    return out


def accepted_answers(task: dict[str, Any], field: str) -> list[str]:
    """The task's accepted answers as strings; VerifierError when missing or empty."""
    value = task.get(field)
    if value is None:
        raise VerifierError(f"task has no {field!r} field")
    answers = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if not answers:
        raise VerifierError(f"task field {field!r} is an empty list")
    return answers


def matches(text: str, answer: str, mode: str) -> bool:
    """Whether the (normalised) response matches one (normalised) answer under `mode`."""
    if not text or not answer:
        return False
    if mode == "contains":
        return re.search(rf"(?<!\w){re.escape(answer)}(?!\w)", text) is not None
    return text == answer


@register("exact_match")
def check_exact_match(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 when the normalised response matches a normalised accepted answer."""
    mode = config.get("mode", "full")
    if mode not in MODES:
        raise VerifierError(f"config.mode {mode!r} is not one of {MODES}")
    answers = [
        normalise(a, config)
        for a in accepted_answers(task, config.get("answerField", "expected_answer"))
    ]
    if mode == "lastLine":
        lines = [line for line in text.splitlines() if line.strip()]
        text = lines[-1] if lines else ""
    response = normalise(text, config)
    ok = any(matches(response, answer, mode) for answer in answers)
    return VerifyResult(reward=1.0 if ok else 0.0)

"""The rule-based grade of the `math` verifier: extract the final answer, then compare it.

Extraction is math_extract's, comparison math_equivalence's (and math_choice's when the task has
options). The grade says whether the answer is right, whether it was marked, what was read, and
whether it could be read at all (the hybrid mode asks a judge when it is wrong or unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gym_operator.verify.base import VerifierError
from gym_operator.verify.builtins.math_choice import grade_choice
from gym_operator.verify.builtins.math_equivalence import equivalent, parse_answer, parse_reference
from gym_operator.verify.builtins.math_extract import extract

EXTRACTION_MODES = ("auto", "boxed", "gsm8k")


@dataclass(frozen=True)
class Grade:
    """The rule-based verdict on one response."""

    correct: bool
    marked: bool
    extracted: str | None
    parsed: bool


def references(task: dict[str, Any], field: str) -> list[str]:
    """The task's accepted answers as strings; VerifierError when there are none."""
    value = task.get(field)
    values = value if isinstance(value, list) else [value]
    found = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not found:
        raise VerifierError(f"task has no {field!r} field")
    return found


def grade(task: dict[str, Any], text: str, config: dict[str, Any], timeout: int | None) -> Grade:
    """Extract the response's final answer and compare it with the task's references."""
    mode = config.get("extraction", "auto")
    if mode not in EXTRACTION_MODES:
        raise VerifierError(f"config.extraction {mode!r} is not one of {EXTRACTION_MODES}")
    field = config.get("answerField", "expected_answer")
    accepted = references(task, field)
    golds = [parse_reference(reference, timeout) for reference in accepted]
    if not all(golds):
        raise VerifierError(f"could not parse reference answer {task.get(field)!r}")
    found = extract(text, mode)
    if found is None:
        return Grade(False, False, None, False)
    options = task.get(config.get("optionsField", "options"))
    if options:
        chosen = grade_choice(found, accepted, options, timeout)
        if chosen is not None:
            return Grade(chosen, found.marked, found.text, True)
    answer = parse_answer(found.text, timeout, prose=not found.marked)
    correct = bool(answer) and any(equivalent(gold, answer, timeout) for gold in golds)
    extracted = str(answer[-1]) if answer else found.text
    return Grade(correct, found.marked, extracted, bool(answer))

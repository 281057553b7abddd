"""Multiple choice in the `math` verifier: an option's letter and its text are the same answer.

Used when the task has options (NeMo Gym's mcqa shape: a list, A, B, ... in order, or a
{letter: text} object). The reference may be a letter or an option's text; the response may give
the letter ("(C) 12", "Answer: B", "the correct option is C", a lone "C") or only the option's
text ("12"). A letter decides; text without a letter must equal exactly one option, the right one.
"""

from __future__ import annotations

import re
import string
from typing import Any

from gym_operator.verify.builtins.math_equivalence import (
    equivalent,
    normalise,
    parse_answer,
    parse_reference,
)
from gym_operator.verify.builtins.math_extract import Extraction

_LEAD_LETTER = re.compile(r"\(([A-Za-z])\)|([A-Z])(?![A-Za-z0-9])")
_NAMED_LETTER = re.compile(r"(?i:option|choice)[ \t]*\(?([A-Z])(?![A-Za-z0-9])")
_DECORATION = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\{|[${}*]")


def option_texts(options: Any) -> dict[str, str]:
    """{letter: text} of a list or object of options; empty for anything else."""
    if isinstance(options, dict):
        return {str(k).strip().upper(): str(v) for k, v in options.items()}
    if isinstance(options, list):
        return dict(zip(string.ascii_uppercase, (str(o) for o in options), strict=False))
    return {}


def _same(reference: str, option: str, timeout: int | None) -> bool:
    if normalise(reference).lower() == normalise(option).lower():
        return True
    return equivalent(parse_reference(option, timeout), parse_answer(reference, timeout), timeout)


def reference_letter(
    references: list[str], options: dict[str, str], timeout: int | None
) -> str | None:
    """The right option's letter: a reference that is a letter, or the option a reference names."""
    for reference in references:
        bare = reference.strip().strip("().: ").upper()
        if len(bare) == 1 and bare in options:
            return bare
    for reference in references:
        for letter, text in options.items():
            if text.strip() and _same(reference, text, timeout):
                return letter
    return None


def chosen_letter(answer: str, options: dict[str, str]) -> str | None:
    """The letter the final answer names ("(C) 12", "C.", "option C"), or None."""
    bare = _DECORATION.sub("", answer).strip()
    lead = _LEAD_LETTER.match(bare)
    if lead:
        letter = (lead.group(1) or lead.group(2)).upper()
        if letter in options:
            return letter
    named = _NAMED_LETTER.search(bare)
    if named and named.group(1) in options:
        return named.group(1)
    return None


def grade_choice(
    found: Extraction, references: list[str], options: Any, timeout: int | None
) -> bool | None:
    """Whether the response chose the right option; None when the task is not multiple choice."""
    texts = option_texts(options)
    right = reference_letter(references, texts, timeout) if texts else None
    if right is None:
        return None
    letter = chosen_letter(found.text, texts)
    if letter is not None:
        return letter == right
    answer = parse_answer(found.text, timeout, prose=not found.marked)
    if not answer:
        return False
    named = [
        letter
        for letter, text in texts.items()
        if text.strip() and equivalent(parse_reference(text, timeout), answer, timeout)
    ]
    return named == [right]

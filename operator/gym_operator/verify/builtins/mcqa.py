"""`mcqa`: multiple choice; the extracted option letter equals the task's answer letter.

Config (all optional):

- `answerField` (default `expected_answer`): task field with the correct letter (or the correct
  option's text)
- `optionsField` (default `options`): task field with the options: a list (A, B, ... in order) or a
  {letter: text} object; it bounds the valid letters (A-J without it)
- `extraction` (default `auto`): `strict`: the last "Answer: X"; `boxed`: the last `\\boxed{X}`;
  `first` / `last`: the first / last standalone valid letter; `auto`: strict, then boxed, then "the
  answer is X", then a response that is only a letter

Reward: 1.0 when the extracted letter is the answer letter, else 0.0; nothing extracted is 0.0.
Components: `correct` and `format` (1.0 when a letter was extracted). A task whose answer is
neither a valid letter nor one of the options' texts is a VerifierError.
"""

from __future__ import annotations

import re
import string
from typing import Any

from gym_operator.verify.base import VerifierError, VerifyResult, register

_BOXED_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE = re.compile(r"[{}]")
# A boxed answer longer than this is not an option letter (bounds the work on hostile text).
MAX_MARKED_CHARS = 1000


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (balanced braces), or None.

    One pass with a stack of open braces, so text full of unclosed `\\boxed{` costs linear time
    (a scan per marker would be quadratic).
    """
    starts = {m.end() for m in _BOXED_OPEN.finditer(text)}
    if not starts:
        return None
    stack: list[int] = []
    best: tuple[int, int] | None = None
    for brace in _BRACE.finditer(text):
        if brace.group() == "{":
            stack.append(brace.end())
        elif stack:
            start = stack.pop()
            if start in starts and (best is None or start > best[0]):
                best = (start, brace.start())
    return None if best is None else text[best[0] : best[1]].strip()


MODES = ("auto", "strict", "boxed", "first", "last")
# A chosen letter: "(b)" in any case, or a bare capital "B" (a bare "a" is the English article).
_LETTER = r"(?:\(\s*([A-Za-z])\s*\)|([A-Z])(?![A-Za-z]))"
_STRICT = re.compile(r"(?i:answer)\s*[:：]\s*" + _LETTER)
# One way to split the spaces around an optional colon (`\s*[:：]?\s*` tried every split of a
# run of spaces: quadratic, hours on a 1 MB answer).
_PHRASE = re.compile(r"(?i:answer\s+is)(?:\s*[:：])?\s*(?:(?i:option)\s+)?" + _LETTER)


def option_letters(task: dict[str, Any], field: str) -> dict[str, str]:
    """{letter: option text} from the options field; A-J with empty texts when absent."""
    options = task.get(field)
    if options is None:
        return {letter: "" for letter in string.ascii_uppercase[:10]}
    if isinstance(options, dict):
        return {str(k).strip().upper(): str(v) for k, v in options.items()}
    if isinstance(options, list):
        return dict(zip(string.ascii_uppercase, (str(o) for o in options), strict=False))
    raise VerifierError(f"task field {field!r} must be a list or an object")


def answer_letter(task: dict[str, Any], field: str, letters: dict[str, str]) -> str:
    """The correct letter: the answer field itself, or the letter of the option it names."""
    value = task.get(field)
    if value is None or str(value).strip() == "":
        raise VerifierError(f"task has no {field!r} field")
    text = str(value).strip()
    bare = text.strip("().: ").upper()
    if bare in letters:
        return bare
    for letter, option in letters.items():
        if option and option.strip().lower() == text.lower():
            return letter
    raise VerifierError(f"answer {text!r} is neither an option letter nor an option's text")


def _valid(found: list[str] | list[tuple[str, str]], letters: dict[str, str]) -> list[str]:
    flat = ["".join(f) if isinstance(f, tuple) else f for f in found]
    return [f.upper() for f in flat if f.upper() in letters]


def extract_letter(text: str, letters: dict[str, str], mode: str) -> str | None:
    """The option letter the response chose under `mode`, or None."""
    standalone = _valid(re.findall(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])", text), letters)
    if mode == "first":
        return standalone[0] if standalone else None
    if mode == "last":
        return standalone[-1] if standalone else None
    if mode in ("strict", "auto"):
        strict = _valid(_STRICT.findall(text), letters)
        if strict:
            return strict[-1]
        if mode == "strict":
            return None
    if mode in ("boxed", "auto"):
        boxed = last_boxed(text)
        if boxed is not None and len(boxed) > MAX_MARKED_CHARS:
            return None
        if boxed is not None:
            inner = re.sub(r"\\text\{([^}]*)\}", r"\1", boxed).strip(" ()")
            return inner.upper() if inner.upper() in letters else None
        if mode == "boxed":
            return None
    phrase = _valid(_PHRASE.findall(text), letters)
    if phrase:
        return phrase[-1]
    bare = text.strip().strip("().:").strip()
    return bare.upper() if bare.upper() in letters and len(bare) == 1 else None


@register("mcqa")
def check_mcqa(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 when the extracted letter is the correct option's letter."""
    mode = config.get("extraction", "auto")
    if mode not in MODES:
        raise VerifierError(f"config.extraction {mode!r} is not one of {MODES}")
    letters = option_letters(task, config.get("optionsField", "options"))
    correct = answer_letter(task, config.get("answerField", "expected_answer"), letters)
    chosen = extract_letter(text, letters, mode)
    reward = 1.0 if chosen == correct else 0.0
    return VerifyResult(
        reward=reward,
        components={"correct": reward, "format": 0.0 if chosen is None else 1.0},
        details={"extracted": chosen},
    )

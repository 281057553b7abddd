"""Final-answer extraction of the `math` verifier: the answer a grader reads, never a rejected one.

Only the last `TAIL_CHARS` characters of a response are read, and every pattern here is a single
scan without nested quantifiers, so a hostile response (`"\\boxed{" * 12000`) costs linear time.
Order: the last `\\boxed{}` (with boxes on the same line beside it: several roots), else the line
after the last `####`, else the sentence after the last explicit statement ("the answer is",
"Final answer:", "the solutions are", "the correct option is"), else the last line. Clauses that
reject a candidate ("x = -1 is rejected", "(the root -1 is extraneous)") are then dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAIL_CHARS = 4096
MAX_ANSWER_CHARS = 600
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")
_BRACE = re.compile(r"[{}]")
# What may stand between two boxes that together give the answer ("\\boxed{2} and x = \\boxed{-3}").
_BOX_JOIN = re.compile(r"[ \t,;$]*(?:and|or)?[ \t,$]*(?:[A-Za-z][ \t]*=[ \t]*)?[ \t$]*")
_ANCHOR = re.compile(
    r"\b(?:(?i:final answer|the answer|answers?|solutions?|roots?|results?|values?|"
    r"correct option|correct choice)[ \t]*(?i:is|are|would be|will be|:|=|equals)|"
    r"(?i:choose option|choose|pick option|pick|select option|select|go with option))"
)
_SUFFIX_ANCHOR = re.compile(
    r"(?i:,? which is (?:our|the|my) (?:final )?answer|"
    r",? (?:is|as) (?:our|the|my) (?:final )?answer)"
)
_SENTENCE_END = re.compile(r"[.!?;](?:[ \t]+(?=[A-Z])|[ \t]*$)|\n")
_REJECT = re.compile(
    r"(?i:reject|extraneous|discard|invalid|not valid|does not (?:satisfy|work|check)|"
    r"doesn't (?:satisfy|work|check)|fails|wrong|incorrect|not a (?:solution|root)|no good|"
    r"not allowed|impossible|not possible|mistake)"
)
_PAREN = re.compile(r"\(([^()]*)\)")
_CLAUSE_SPLIT = re.compile(r";|,? but |(?<![\d\\])\.(?=\s)|\? ")
_MARKDOWN = re.compile(r"\*\*|__")


@dataclass(frozen=True)
class Extraction:
    """The final answer's text, whether it was marked (box, ####), and which rule found it."""

    text: str
    marked: bool
    rule: str


def _box_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the content of every closed box, in one pass over the braces."""
    openers = {m.end() - 1 for m in _BOX_OPEN.finditer(text)}
    if not openers:
        return []
    stack: list[int] = []
    spans: list[tuple[int, int]] = []
    for match in _BRACE.finditer(text):
        if match.group() == "{":
            stack.append(match.start())
        elif stack:
            start = stack.pop()
            if start in openers:
                spans.append((start + 1, match.start()))
    return spans


def last_boxes(text: str) -> str | None:
    """The last box's content, joined with the boxes just before it on the same line."""
    spans = _box_spans(text)
    if not spans:
        return None
    spans.sort()
    outer: list[tuple[int, int]] = []
    for span in spans:  # sorted by start, a nested box ends before its container's end
        if not outer or span[1] > outer[-1][1]:
            outer.append(span)
    chosen = [outer[-1]]
    for span in reversed(outer[:-1]):
        between = text[span[1] + 1 : chosen[0][0]]
        if len(between) > 40 or not _BOX_JOIN.fullmatch(between):
            break
        chosen.insert(0, span)
    return ", ".join(text[a:b].strip() for a, b in chosen)


def last_gsm8k(text: str) -> str | None:
    """The rest of the line after the last `####`."""
    at = text.rfind("####")
    if at < 0:
        return None
    line = text[at + 4 :].split("\n", 1)[0].strip()
    return line or None


def last_statement(text: str) -> str | None:
    """The sentence after the last explicit answer statement ("the answer is", "Answer:")."""
    last = None
    for found in _ANCHOR.finditer(text):
        last = found
    if last is None:
        return None
    rest = text[last.end() : last.end() + MAX_ANSWER_CHARS].lstrip(" \t:")
    end = _SENTENCE_END.search(rest)
    sentence = rest[: end.start()] if end else rest
    return sentence.strip() or None


def last_line(text: str) -> str | None:
    """The last non-empty line."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[-MAX_ANSWER_CHARS:]
    return None


def drop_rejected(answer: str) -> str:
    """The answer without parenthesised or separate clauses that reject a candidate."""
    answer = _PAREN.sub(lambda m: "" if _REJECT.search(m.group(1)) else m.group(0), answer)
    if not _REJECT.search(answer):
        return answer.strip()
    kept = [c for c in _CLAUSE_SPLIT.split(answer) if c.strip() and not _REJECT.search(c)]
    return ", ".join(c.strip() for c in kept)


def extract(text: str, mode: str = "auto") -> Extraction | None:
    """The final answer under `mode` (`auto`, `boxed`, `gsm8k`), or None when there is none."""
    tail = _MARKDOWN.sub("", text[-TAIL_CHARS:])
    if mode in ("auto", "boxed"):
        boxed = last_boxes(tail)
        if boxed is not None:  # a longer box is marked but is not an answer
            return Extraction(boxed if len(boxed) <= MAX_ANSWER_CHARS else "", True, "boxed")
    if mode in ("auto", "gsm8k"):
        marked = last_gsm8k(tail)
        if marked is not None:
            text = marked.rstrip(".") if len(marked) <= MAX_ANSWER_CHARS else ""
            return Extraction(text, True, "gsm8k")
    if mode != "auto":
        return None
    statement = last_statement(tail)
    if statement is not None:
        return Extraction(drop_rejected(statement), False, "statement")
    line = last_line(tail)
    if line is None:
        return None
    suffix = _SUFFIX_ANCHOR.search(line)
    if suffix is not None:
        line = line[: suffix.start()]
    return Extraction(drop_rejected(line), False, "last_line")

"""Answer equivalence of the `math` verifier: one notation for both sides, then math-verify.

`normalise` rewrites an answer (the reference and the response's final answer alike) into the
notation math-verify reads: thin spaces and spaced thousands joined (1 234 567), numbers in words
as digits ("twenty-three", "three quarters"), set-builder notation as its condition, vectors in
angle brackets or matrices as tuples, `j` as the imaginary unit, "x = 2 or x = -3" as a list, and
units or currency after a number dropped. `equivalent` then asks math-verify, and compares an
inequality with an interval as the sets they describe. Every pattern is linear-time; answers
are at most a few hundred characters (see math_extract).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy
from math_verify import parse, verify

_SPACES = "\u2009\u202f\u00a0\u2007\u2008\u200a"
_UNICODE = str.maketrans(
    {
        "\u2212": "-",
        "\u2013": "-",
        "≤": "\\le ",
        "≥": "\\ge ",
        "∞": "\\infty ",
        "∪": "\\cup ",
        "∩": "\\cap ",
        "×": "\\times ",
        "·": "\\cdot ",
        "°": "^\\circ",
        "π": "\\pi ",
        "√": "\\sqrt",
        "²": "^2",
        "³": "^3",
        **{c: " " for c in _SPACES},
    }
)
_DIGIT_GROUP = re.compile(
    r"(?<=\d)(?<!\d\d\d\d)(?:\\,|\\ |\\;|\\:|\\!|~|\{,\}|[ " + _SPACES + r"])(?=\d\d\d(?!\d))"
)
_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|operatorname|mbox)[ \t]*\{([^{}]*)\}"
)
_NOISE = re.compile(r"\\(?:left|right|displaystyle|!)(?![A-Za-z])|\\[dt]frac")
_WORD = re.compile(r"[A-Za-z]+")
_WHITESPACE = re.compile(r"[ \t]+")
# Already in math-verify's notation: an integer, a decimal, a fraction (the common case, fast).
_PLAIN_NUMBER = re.compile(r"-?\d{1,30}(?:[./]\d{1,30})?|-?\\frac\{\d{1,30}\}\{\d{1,30}\}")
_CONNECTOR = re.compile(r",? (?:and|or) |\\q?quad")
_INEQUALITY = re.compile(r"<|>|\\[lg]eq?(?![A-Za-z])|\\[lg]t(?![A-Za-z])")
_LEADING_NUMBER = re.compile(r"[ \t]*-?(?:\d[\d.,]*|\\frac\{\d+\}\{\d+\})")
_UNIT_NOISE = re.compile(r"\^\{?\\circ\}?|\^\{?\d\}?|\\[,;: ]|\\circ")
_JUNIT = re.compile(r"\dj(?![A-Za-z])|\d[ \t]+j(?![A-Za-z])")
_IUNIT = re.compile(r"(?<![A-Za-z\\])i(?![A-Za-z])")
_JSYMBOL = re.compile(r"(?<![A-Za-z\\])j(?![A-Za-z])")
_TOKEN = re.compile(r"\\[A-Za-z]+|[A-Za-z]+|\S")
_SET_BUILDER = re.compile(r"[ \t]*[A-Za-z][ \t]*(?:\\mid|\\colon|:|\||\\vert)")

SMALL = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
DENOMINATORS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4,
    "fourths": 4, "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7,
    "eighth": 8, "eighths": 8, "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10,
}  # fmt: skip
SIGNS = {"negative", "minus"}
NUMBER_WORDS = set(SMALL) | set(SCALES) | set(DENOMINATORS)
# Single letters that are units after a number; longer words are units unless they are math.
UNIT_LETTERS = {"m", "g", "s", "h", "L", "K", "N", "J", "W", "V"}
MATH_WORDS = {"pi", "sqrt", "ln", "log", "sin", "cos", "tan", "infty", "cdot", "times", "frac"}
KEEP_IN_TAIL = {"and", "or"}
# Longer or deeper answers are not handed to math-verify: its parser is not linear-time.
MAX_PARSE_CHARS = 400
MAX_NESTING = 12


def _number_value(words: list[str]) -> Fraction | None:
    """The value of a run of number words ("negative three quarters"), or None."""
    sign = -1 if words[0] in SIGNS else 1
    words = [w for w in words if w not in SIGNS and w != "and"]
    denominator = 1
    if words and words[-1] in DENOMINATORS:
        denominator = DENOMINATORS[words.pop()]
        if words in ([], ["a"]):
            words = ["one"]
    total = current = 0
    for word in words:
        if word in SMALL:
            current += SMALL[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in SCALES:
            total, current = total + max(current, 1) * SCALES[word], 0
        else:
            return None
    if not words:
        return None
    return Fraction(sign * (total + current), denominator)


def _latex(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def words_to_numbers(text: str) -> str:
    """Runs of English number words replaced by their value ("twenty-three" -> 23)."""
    tokens = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    if not any(word in NUMBER_WORDS for _, _, word in tokens):
        return text
    runs: list[list[tuple[int, int, str]]] = []
    allowed = NUMBER_WORDS | SIGNS | {"and", "a"}
    for token in tokens:
        gap = text[runs[-1][-1][1] : token[0]] if runs else ""
        joined = bool(runs) and gap.strip(" \t-") == "" and token[2] in allowed
        if joined and runs[-1][-1][2] in allowed:
            runs[-1].append(token)
        else:
            runs.append([token])
    out, pos = [], 0
    for run in runs:
        while run and run[-1][2] in {"and", "a"} | SIGNS:
            run = run[:-1]
        if not run or not any(w in NUMBER_WORDS for _, _, w in run):
            continue
        value = _number_value([w for _, _, w in run])
        if value is None:
            continue
        out.append(text[pos : run[0][0]] + _latex(value))
        pos = run[-1][1]
    return "".join(out) + text[pos:]


def math_segments(text: str) -> str | None:
    """The `$...$` parts of a sentence joined by commas, or None when it has none."""
    text = text.replace("$$", "$").replace("\\(", "$").replace("\\)", "$")
    parts = text.split("$")
    if len(parts) < 3 or len(parts) % 2 == 0:
        return None
    segments = [p.strip() for p in parts[1::2] if p.strip()]
    return ", ".join(segments) if segments else None


def _unit_tail(tokens: list[re.Match[str]]) -> int:
    """How many tokens at the end are a unit ("cm ^ 2", "square centimeters", "km / h", ".")."""
    count = 0
    while count < len(tokens):
        word = tokens[-1 - count].group()
        before = tokens[-2 - count].group() if count + 1 < len(tokens) else ""
        if word.isdigit() and before == "^":
            count += 2
        elif (word.isalpha() and word not in MATH_WORDS and word.lower() not in KEEP_IN_TAIL) and (
            len(word) > 1 or word in UNIT_LETTERS
        ):
            count += 1
        elif word in ("/", ".", "\\circ", "%") and count + 1 < len(tokens):
            count += 1
        else:
            break
    return count


def math_tail(text: str) -> str:
    """The mathematical end of a prose sentence ("we get x = 2 or x = -3." -> "x = 2 or x = -3")."""
    tokens = list(_TOKEN.finditer(text))
    units = _unit_tail(tokens)
    if units and units < len(tokens) and tokens[-1 - units].group()[-1:].isdigit():
        text, tokens = text[: tokens[-units].start()], tokens[:-units]
    start = None
    for token in reversed(tokens):
        word = token.group()
        if len(word) > 1 and word.isalpha() and word.lower() not in KEEP_IN_TAIL:
            break
        start = token.start()
    if start is None:
        return text
    tail = text[start:].strip(" \t.,;:")
    return tail if any(c.isdigit() for c in tail) else text


def set_builder(text: str) -> str:
    """`\\{x \\mid x > 2\\}` -> `x > 2` (the condition describes the same set)."""
    stripped = text.strip()
    if stripped.startswith("\\{") and stripped.endswith("\\}"):
        inner = stripped[2:-2]
        found = _SET_BUILDER.match(inner)
        if found:
            return inner[found.end() :].strip()
    return text


def _as_tuple(inner: str) -> str:
    return "(" + ", ".join(p.strip() for p in re.split(r"\\\\|&|,", inner) if p.strip()) + ")"


def vectors(text: str) -> str:
    """Angle brackets and single-row or single-column matrices as tuples."""
    text = text.replace("\\langle", "<").replace("\\rangle", ">")
    stripped = text.strip()
    if stripped.startswith("<") and stripped.endswith(">") and "," in stripped:
        inner = stripped[1:-1]
        if "<" not in inner and ">" not in inner:
            return _as_tuple(inner)
    for env in ("pmatrix", "bmatrix", "matrix"):
        begin, end = f"\\begin{{{env}}}", f"\\end{{{env}}}"
        start = text.find(begin)
        stop = text.find(end, start + 1)
        if start >= 0 and stop > start:
            inner = text[start + len(begin) : stop]
            if not ("&" in inner and "\\\\" in inner):
                text = text[:start] + _as_tuple(inner) + text[stop + len(end) :]
    return text


def imaginary_j(text: str) -> str:
    """`3 + 4j` -> `3 + 4i` (engineering notation), when `i` is not used already."""
    if _JUNIT.search(text) and not _IUNIT.search(text):
        return _JSYMBOL.sub("i", text)
    return text


def connectors(text: str) -> str:
    """ "2 and -3", "x = 2 or x = -3" -> lists; "and" between inequalities is left alone."""
    if _INEQUALITY.search(text):
        return text.replace(" or ", ", ")
    return _CONNECTOR.sub(", ", text)


def strip_units(text: str) -> str:
    """ "12 cm^2", "3.50 dollars", "45 degrees" -> the number; anything else unchanged."""
    found = _LEADING_NUMBER.match(text)
    if not found:
        return text
    rest = _UNIT_NOISE.sub(" ", text[found.end() :]).strip(" \t.")
    if not rest or rest.strip("/ \t") == "":
        return found.group().strip() if rest else text
    words = _WORD.findall(rest)
    if _WORD.sub("", rest).strip(" \t/.") != "":
        return text
    for word in words:
        if word in MATH_WORDS or (len(word) == 1 and word not in UNIT_LETTERS):
            return text
    return found.group().strip()


def normalise(text: str, prose: bool = False) -> str:
    """One notation for an answer; `prose`: the answer may be a sentence around the math."""
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    text = _WHITESPACE.sub(" ", _DIGIT_GROUP.sub("", text).translate(_UNICODE))
    text = _NOISE.sub(lambda m: "\\frac" if m.group().endswith("frac") else "", text)
    text = text.replace("\\$", " ").replace("\\%", "%")
    segments = math_segments(text)
    if segments is not None:
        text, prose = segments, False
    elif text.count("$") % 2:
        text = text.replace("$", " ")
    for _ in range(2):
        text = _WRAPPER.sub(r"\1", text)
    text = words_to_numbers(text)
    text = text.replace(" equals ", " = ").replace(" equal ", " = ")
    if prose:
        text = math_tail(text)
    text = vectors(set_builder(text))
    text = strip_units(connectors(imaginary_j(text)))
    return _WHITESPACE.sub(" ", text).strip(" \t.,;")


def plausible(answer: str) -> bool:
    """Short enough and shallow enough for math-verify's parser (which is not linear-time)."""
    if not answer or len(answer) > MAX_PARSE_CHARS:
        return False
    depth = 0
    for char in answer:
        depth += char in "([{"
        if depth > MAX_NESTING:
            return False
        depth -= char in ")]}"
    return True


def parse_answer(text: str, timeout: int | None, prose: bool = False) -> list[Any]:
    """math-verify's parse of the normalised answer (as LaTeX, else as text)."""
    normal = normalise(text, prose)
    if not plausible(normal):
        return []
    parsed = parse(f"${normal}$", parsing_timeout=timeout)
    if not parsed and prose and plausible(text):
        parsed = parse(text, parsing_timeout=timeout)
    return parsed  # type: ignore[no-any-return]


@lru_cache(maxsize=4096)
def parse_reference(answer: str, timeout: int | None) -> tuple[Any, ...]:
    """A reference answer parsed once per process (plain, `$...$`, `\\boxed{}`, words)."""
    if "\\boxed" in answer:
        boxed = parse(answer, parsing_timeout=timeout)
        if boxed:
            return tuple(boxed)
    return tuple(parse_answer(answer, timeout) or parse(answer, parsing_timeout=timeout))


def _relational(obj: Any) -> bool:
    return isinstance(obj, sympy.Rel | sympy.And | sympy.Or) and not isinstance(obj, sympy.Eq)


def as_set(obj: Any) -> Any | None:
    """The set of reals an interval, inequality or list of inequalities describes, or None."""
    if isinstance(obj, sympy.Interval | sympy.Union):
        return obj
    if isinstance(obj, sympy.Eq) and isinstance(obj.rhs, sympy.Interval | sympy.Union):
        return obj.rhs
    try:
        if _relational(obj) and len(obj.free_symbols) == 1:
            return obj.as_set()
        if isinstance(obj, sympy.FiniteSet) and obj.args and all(map(_relational, obj.args)):
            if len(set().union(*(a.free_symbols for a in obj.args))) == 1:
                return sympy.Union(*(a.as_set() for a in obj.args))
    except (TypeError, ValueError, NotImplementedError, AttributeError):
        return None
    return None


def equivalent(gold: tuple[Any, ...] | list[Any], answer: list[Any], timeout: int | None) -> bool:
    """True when the parsed answer equals the parsed reference."""
    if not gold or not answer:
        return False
    if verify(list(gold), answer, timeout_seconds=timeout):
        return True
    if not (_relational(gold[0]) or _relational(answer[0]) or isinstance(answer[0], sympy.Set)):
        return False
    left, right = as_set(gold[0]), as_set(answer[0])
    return left is not None and right is not None and bool(left == right)

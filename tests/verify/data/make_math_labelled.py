"""Build math_labelled.jsonl: labelled math answers whose labels are computed, not typed.

Every case holds the true value (computed from the question's parameters) and the value the
response states (computed the same way, then written in some notation); the label is whether
the two values are equal, so a label is never a judgement call. Half the cases of every category
are correct answers, half are wrong ones (a near miss: a neighbouring number, a flipped sign, an
open endpoint for a closed one, a dropped or extra root, the rejected candidate kept).

Run: python tests/verify/data/make_math_labelled.py  (rewrites the file beside it; deterministic)
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

OUT = Path(__file__).with_name("math_labelled.jsonl")
PER_CATEGORY = 52  # cases per category, half correct

Case = tuple[str, str, str, object, object, dict]  # question, reference, response, truth, stated

UNITS = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]  # fmt: skip
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINALS = {2: ("half", "halves"), 3: ("third", "thirds"), 4: ("quarter", "quarters"),
            5: ("fifth", "fifths"), 6: ("sixth", "sixths"), 8: ("eighth", "eighths")}  # fmt: skip


def words(n: int) -> str:
    """An integer 0-999 in English words ("negative" for n < 0)."""
    if n < 0:
        return "negative " + words(-n)
    if n == 0:
        return "zero"
    out = []
    if n >= 100:
        out.append(UNITS[n // 100] + " hundred")
        n %= 100
        if n:
            out.append("and")
    if n >= 20:
        out.append(TENS[n // 10] + ("-" + UNITS[n % 10] if n % 10 else ""))
    elif n >= 10:
        out.append(TEENS[n - 10])
    elif n:
        out.append(UNITS[n])
    return " ".join(out)


def fraction_words(value: Fraction) -> str:
    """A proper fraction p/q (q in ORDINALS) in words: "three quarters", "one half"."""
    single, plural = ORDINALS[value.denominator]
    return f"{words(value.numerator)} {single if value.numerator == 1 else plural}"


def latex_fraction(value: Fraction) -> str:
    """\\frac{p}{q}, or the integer."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def group_digits(n: int, sep: str) -> str:
    """n with its thousands separated by `sep`."""
    text = f"{n:,}"
    return text.replace(",", sep)


def near_miss(rng: random.Random, value: int) -> int:
    """A wrong integer close to `value`."""
    return value + rng.choice([-10, -2, -1, 1, 2, 10])


def pick(rng: random.Random, correct: bool, truth: object, wrong: Callable[[], object]) -> object:
    """The stated value: the truth, or a wrong value that really differs from it."""
    if correct:
        return truth
    value = wrong()
    while value == truth:
        value = wrong()
    return value


def plain(rng: random.Random, correct: bool) -> Case:
    """Integer and fraction arithmetic in the usual marked forms."""
    a, b, c = rng.randint(12, 99), rng.randint(3, 40), rng.randint(2, 9)
    if rng.random() < 0.5:
        question = f"Compute {a} \\times {b} - {c}."
        truth: Fraction = Fraction(a * b - c)
    else:
        question = f"Simplify \\frac{{{a}}}{{{b * c}}} + \\frac{{1}}{{{c}}}."
        truth = Fraction(a, b * c) + Fraction(1, c)
    stated = pick(rng, correct, truth, lambda: truth + rng.choice([1, -1, Fraction(1, 2)]))
    assert isinstance(stated, Fraction)
    shown = latex_fraction(stated)
    slash = str(stated) if stated.denominator != 1 else str(stated.numerator)
    response = rng.choice(
        [
            f"Working it out step by step, we get \\boxed{{{shown}}}.",
            f"Putting it together: {slash}\n#### {slash}",
            f"Therefore the final answer is ${shown}$.",
            f"We find the value is {slash}.\n\nFinal Answer: {slash}",
            f"**Answer:** ${shown}$",
        ]
    )
    reference = rng.choice([latex_fraction(truth), str(truth)])
    return question, reference, response, truth, stated, {}


def spacing(rng: random.Random, correct: bool) -> Case:
    """Large numbers written with thin spaces, spaced thousands or LaTeX spacing commands."""
    a, b = rng.randint(1000, 9999), rng.randint(120, 990)
    truth = a * b
    stated = pick(rng, correct, truth, lambda: truth + rng.choice([1000, -1000, 9, 100000]))
    assert isinstance(stated, int)
    sep = rng.choice(["\u2009", "\u202f", "\u00a0", " ", "\\,", "{,}", "\\ ", "\\;"])
    written = group_digits(stated, sep)
    if sep.startswith("\\") or sep == "{,}":
        response = rng.choice(
            [f"The product is $\\boxed{{{written}}}$.", f"So the total is ${written}$."]
        )
    else:
        response = rng.choice(
            [
                f"Multiplying gives {written}.",
                f"The answer is {written}.",
                f"So we get \\boxed{{{written}}}",
                f"Total: {written} units\n#### {written}",
            ]
        )
    reference = rng.choice([str(truth), f"{truth:,}"])
    return f"What is {a} \\times {b}?", reference, response, truth, stated, {}


def in_words(rng: random.Random, correct: bool) -> Case:
    """Answers written in English words: integers and simple fractions."""
    if rng.random() < 0.6:
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        truth: Fraction = Fraction(a + b)
        question = f"Tom has {a} marbles and finds {b} more. How many marbles does he have?"
        wrong: Callable[[], object] = lambda: truth + rng.choice([-2, -1, 1, 2, 10])  # noqa: E731
    else:
        q = rng.choice(sorted(ORDINALS))
        p = rng.randint(1, q - 1)
        while Fraction(p, q).denominator != q:
            p = rng.randint(1, q - 1)
        truth = Fraction(p, q)
        question = f"A pie is cut into {q} equal slices and {p} are eaten. What fraction is eaten?"
        same = [Fraction(i, q) for i in range(1, q) if Fraction(i, q).denominator == q]
        near = [Fraction(1, d) for d in ORDINALS] + same
        wrong = lambda: rng.choice(near)  # noqa: E731
    stated = pick(rng, correct, truth, wrong)
    assert isinstance(stated, Fraction)
    said = words(stated.numerator) if stated.denominator == 1 else fraction_words(stated)
    response = rng.choice(
        [
            f"The answer is {said}.",
            f"So the result is {said}.",
            f"Final answer: {said}",
            f"\\boxed{{\\text{{{said}}}}}",
            f"{said[0].upper()}{said[1:]}.",
        ]
    )
    reference = latex_fraction(truth) if rng.random() < 0.5 else str(truth)
    return question, reference, response, truth, stated, {}


def choice(rng: random.Random, correct: bool) -> Case:
    """Multiple choice: the letter, "(C) 12", "Answer: B", the option's text, unboxed letters."""
    a, b = rng.randint(3, 30), rng.randint(3, 30)
    truth = a * b
    values = {truth}
    while len(values) < rng.choice([4, 5]):
        values.add(truth + rng.choice([-a, a, -b, b, 1, -1, 2 * a, 10]))
    options = sorted(values)
    rng.shuffle(options)
    letters = string.ascii_uppercase[: len(options)]
    right = options.index(truth)
    chosen = pick(rng, correct, right, lambda: rng.randrange(len(options)))
    assert isinstance(chosen, int)
    letter, text = letters[chosen], str(options[chosen])
    response = rng.choice(
        [
            f"({letter}) {text}",
            f"The product is {text}, so\nAnswer: {letter}",
            f"Computing {a} times {b} gives {text}. The correct option is {letter}.",
            f"\\boxed{{{letter}}}",
            f"**{letter}**",
            f"{letter}) {text}",
            f"The answer is {text}.",
            f"Answer: ({letter})",
            f"I choose option {letter}, which is {text}.",
        ]
    )
    reference = letters[right] if rng.random() < 0.7 else str(truth)
    question = f"What is {a} \\times {b}? " + " ".join(
        f"({x}) {v}" for x, v in zip(letters, options, strict=True)
    )
    stated = options[chosen]
    return question, reference, response, truth, stated, {"options": [str(v) for v in options]}


Span = tuple[Fraction, bool, Fraction, bool]  # low, low closed, high, high closed (inf: None)
INF = Fraction(10**9)


def interval_text(span: Span) -> str:
    """Interval notation."""
    low, lc, high, hc = span
    left = "(-\\infty" if low == -INF else ("[" if lc else "(") + latex_fraction(low)
    right = "\\infty)" if high == INF else latex_fraction(high) + ("]" if hc else ")")
    return f"{left}, {right}"


def inequality_text(span: Span, rng: random.Random) -> str:
    """The same set as an inequality in x."""
    low, lc, high, hc = span
    le, ge = rng.choice([("\\le", "\\ge"), ("\\leq", "\\geq"), ("≤", "≥")])
    if low == -INF:
        return f"x {le if hc else '<'} {latex_fraction(high)}"
    if high == INF:
        return f"x {ge if lc else '>'} {latex_fraction(low)}"
    return f"{latex_fraction(low)} {le if lc else '<'} x {le if hc else '<'} {latex_fraction(high)}"


def intervals(rng: random.Random, correct: bool) -> Case:
    """A linear inequality's solution set as an interval, an inequality or set-builder notation."""
    a, b = rng.randint(2, 6), rng.randint(-9, 9)
    c = rng.randint(-20, 30)
    bound = Fraction(c - b, a)
    if rng.random() < 0.5:
        strict = rng.random() < 0.5
        sign = "<" if strict else "\\le"
        question = f"Solve {a}x + {b} {sign} {c}."
        truth: Span = (-INF, False, bound, not strict)
    else:
        low = rng.randint(-9, 3)
        c = a * (low + rng.randint(1, 8)) + b
        bound = Fraction(c - b, a)
        question = f"Find all x with {low} \\le x and {a}x + {b} < {c}."
        truth = (Fraction(low), True, bound, False)

    def wrong() -> Span:
        low_, lc, high, hc = truth
        kind = rng.choice(["flip", "shift", "open"])
        if kind == "flip":
            return (high, not hc, INF, False) if low_ == -INF else (low_, not lc, high, hc)
        if kind == "shift":
            return (low_, lc, high + 1, hc)
        return (low_, lc, high, not hc)

    stated = pick(rng, correct, truth, wrong)
    assert isinstance(stated, tuple)
    inequality = inequality_text(stated, rng)
    response = rng.choice(
        [
            f"The solution set is $\\boxed{{{interval_text(stated)}}}$.",
            f"Therefore ${inequality}$.",
            f"So the answer is $\\boxed{{{inequality}}}$.",
            f"The solution is $\\{{x \\mid {inequality}\\}}$.",
            f"Answer: $\\{{x : {inequality}\\}}$",
            f"Hence $x \\in {interval_text(stated)}$.",
        ]
    )
    reference = rng.choice(
        [interval_text(truth), interval_text(truth), inequality_text(truth, rng)]
    )
    return question, reference, response, truth, stated, {}


def roots(rng: random.Random, correct: bool) -> Case:
    """A quadratic's two roots listed in prose, in any order."""
    r, s = rng.sample([v for v in range(-9, 10) if v != 0], 2)
    truth = frozenset({r, s})
    question = f"Solve x^2 + {-(r + s)}x + {r * s} = 0."

    def wrong() -> frozenset[int]:
        kind = rng.choice(["one", "sign", "extra"])
        if kind == "one":
            return frozenset({r})
        if kind == "sign":
            return frozenset({-r, s})
        return frozenset({r, s, rng.choice([0, r + s])})

    stated = pick(rng, correct, truth, wrong)
    assert isinstance(stated, frozenset)
    items = sorted(stated, key=lambda _: rng.random())
    joined = ", ".join(str(v) for v in items[:-1])
    listed = f"{joined} and {items[-1]}" if joined else str(items[-1])
    eqs = " or ".join(f"x = {v}" for v in items)
    response = rng.choice(
        [
            f"The solutions are {listed}.",
            f"Factoring, we get {eqs}.",
            f"So the roots are $x = {items[0]}$"
            + "".join(f" and $x = {v}$" for v in items[1:])
            + ".",
            f"The answer is $\\boxed{{{', '.join(str(v) for v in items)}}}$.",
            f"Therefore x equals {listed}.",
        ]
    )
    reference = rng.choice([f"{r}, {s}", f"\\{{{r}, {s}\\}}", f"x = {r} \\text{{ or }} x = {s}"])
    return question, reference, response, truth, stated, {}


def complex_vector(rng: random.Random, correct: bool) -> Case:
    """Complex numbers and vectors in other notations (j, \\mathrm{i}, angle brackets, columns)."""
    if rng.random() < 0.5:
        p, q, r, s = (rng.randint(-6, 6) or 1 for _ in range(4))
        truth: object = complex(p * r - q * s, p * s + q * r)
        question = f"Compute ({p} + {q}i)({r} + {s}i)."
        stated = pick(rng, correct, truth, lambda: rng.choice([truth.conjugate(), truth + 1]))
        assert isinstance(stated, complex)
        re_, im = int(stated.real), int(stated.imag)
        unit = rng.choice(["i", "j", "\\mathrm{i}", "i"])
        sign = "+" if im >= 0 else "-"
        response = rng.choice(
            [
                f"The product is ${re_} {sign} {abs(im)}{unit}$.",
                f"\\boxed{{{im}{unit} + {re_}}}".replace("+ -", "- "),
                f"So z = {re_} {sign} {abs(im)}{unit}.",
            ]
        )
        tr, ti = int(truth.real), int(truth.imag)
        reference = f"{tr} {'+' if ti >= 0 else '-'} {abs(ti)}i"
        return question, reference, response, truth, stated, {}
    u = [rng.randint(-5, 5) for _ in range(3)]
    v = [rng.randint(-5, 5) for _ in range(3)]
    truth = (u[0] + 2 * v[0], u[1] + 2 * v[1], u[2] + 2 * v[2])
    question = f"Let u = ({u[0]}, {u[1]}, {u[2]}) and v = ({v[0]}, {v[1]}, {v[2]}). Find u + 2v."
    stated = pick(
        rng,
        correct,
        truth,
        lambda: rng.choice([(truth[1], truth[0], truth[2]), (truth[0], truth[1], -truth[2] + 1)]),
    )
    assert isinstance(stated, tuple)
    x, y, z = stated
    response = rng.choice(
        [
            f"$\\langle {x}, {y}, {z} \\rangle$",
            f"The vector is <{x}, {y}, {z}>.",
            f"$\\boxed{{\\begin{{pmatrix}} {x} \\\\ {y} \\\\ {z} \\end{{pmatrix}}}}$",
            f"So u + 2v = $\\begin{{bmatrix}} {x} \\\\ {y} \\\\ {z} \\end{{bmatrix}}$.",
            f"The answer is $({x}, {y}, {z})$.",
        ]
    )
    reference = rng.choice(
        [
            f"({truth[0]}, {truth[1]}, {truth[2]})",
            f"\\begin{{pmatrix}} {truth[0]} \\\\ {truth[1]} \\\\ {truth[2]} \\end{{pmatrix}}",
        ]
    )
    return question, reference, response, truth, stated, {}


def units(rng: random.Random, correct: bool) -> Case:
    """Units, currency and text wrapped around the number."""
    kind = rng.choice(["area", "money", "angle", "speed"])
    a, b = rng.randint(3, 25), rng.randint(3, 25)
    if kind == "area":
        truth: Fraction = Fraction(a * b)
        question = f"A rectangle is {a} cm by {b} cm. What is its area?"
        tails = ["\\text{ cm}^2", " cm^2", " square centimeters", "\\,\\mathrm{cm}^2"]
    elif kind == "money":
        truth = Fraction(a * 125, 100)
        question = f"A pen costs $1.25. How much do {a} pens cost, in dollars?"
        tails = [" dollars", "", " USD"]
    elif kind == "angle":
        truth = Fraction(180 - 10 * (a % 9 + 1) - 5 * (b % 7 + 1))
        first, second = 10 * (a % 9 + 1), 5 * (b % 7 + 1)
        question = f"Two angles of a triangle are {first} and {second} degrees. Find the third."
        tails = ["^\\circ", "°", " degrees", "^{\\circ}"]
    else:
        truth = Fraction(a * 12)
        question = f"A train travels {a} km in 5 minutes. What is its speed in km/h?"
        tails = [" km/h", "\\text{ km/h}", " kilometers per hour"]
    misses = [1, -1, 10, Fraction(1, 4)] if kind == "money" else [1, -1, 10, 2]
    stated = pick(rng, correct, truth, lambda: truth + rng.choice(misses))
    assert isinstance(stated, Fraction)
    number = f"{float(stated):.2f}" if kind == "money" else latex_fraction(stated)
    tail = rng.choice(tails)
    money = "\\$" if kind == "money" and not tail else ""
    response = rng.choice(
        [
            f"The result is {money}{number}{tail}.",
            f"$\\boxed{{{money}{number}{tail}}}$",
            f"So the answer is ${money}{number}{tail}$.",
            f"It is {number}{tail}, which is our final answer.",
        ]
    )
    reference = f"{float(truth):.2f}" if kind == "money" else latex_fraction(truth)
    return question, reference, response, truth, stated, {}


def rejected(rng: random.Random, correct: bool) -> Case:
    """The final answer stated after (or beside) a rejected or abandoned candidate."""
    good = rng.randint(2, 12)
    bad = -rng.randint(1, 9)
    truth = frozenset({good})
    question = f"Solve \\sqrt{{x + {good * good - good}}} = x, given the extraneous root {bad}."
    stated = pick(rng, correct, truth, lambda: rng.choice([frozenset({bad}), truth | {bad}]))
    assert isinstance(stated, frozenset)
    if len(stated) == 2:
        response = rng.choice(
            [
                f"Squaring gives x = {good} or x = {bad}. Both are answers: x = {good}, {bad}.",
                f"The solutions are x = {good} and x = {bad}.",
                f"Checking both, they work, so \\boxed{{{good}, {bad}}}.",
            ]
        )
        return question, str(good), response, truth, stated, {}
    final = next(iter(stated))
    other = bad if final == good else good
    response = rng.choice(
        [
            f"x = {final} (the root x = {other} is rejected)",
            f"We get x = {final} or x = {other}, but x = {other} is extraneous. "
            f"So the answer is {final}.",
            f"At first I got \\boxed{{{other}}}, but that does not satisfy the equation. "
            f"The correct answer is \\boxed{{{final}}}.",
            f"The candidates are {other} and {final}; discarding {other}, the answer is {final}.",
            f"Answer: {other}? No, checking shows {other} fails. Final answer: {final}",
            f"#### {other}\nWait, {other} does not check out. Let me redo it.\n#### {final}",
        ]
    )
    return question, str(good), response, truth, stated, {}


CATEGORIES: dict[str, Callable[[random.Random, bool], Case]] = {
    "plain": plain,
    "multiple_choice": choice,
    "intervals": intervals,
    "spacing": spacing,
    "words": in_words,
    "roots": roots,
    "complex_vector": complex_vector,
    "units": units,
    "rejected": rejected,
}


def build(seed: int = 14) -> list[dict]:
    """All rows; each label is `stated == truth`, and each category is half correct."""
    rng = random.Random(seed)
    rows = []
    for name, make in CATEGORIES.items():
        for index in range(PER_CATEGORY):
            correct = index % 2 == 0
            question, reference, text, truth, stated, extra = make(rng, correct)
            label = stated == truth
            assert label == correct, (name, index, truth, stated)
            rows.append(
                {
                    "id": f"{name}-{index:03d}",
                    "category": name,
                    "label": label,
                    "expected_answer": reference,
                    **extra,
                    "responses_create_params": {"input": [{"role": "user", "content": question}]},
                    "response_text": text,
                }
            )
    return rows


def main() -> None:
    """Write the file."""
    rows = build()
    with OUT.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()

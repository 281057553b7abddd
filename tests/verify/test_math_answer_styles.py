"""The math verifier reads answers as a grader does: notations, prose, options, rejected roots."""

from __future__ import annotations

import pytest

from gym_operator.verify.base import get_verifier

check = get_verifier("math")
OPTIONS = ["10", "11", "12", "13"]


def reward(expected: str, text: str, **task: object) -> float:
    return check({"expected_answer": expected, **task}, text, {}).reward


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("1234567", "The total is 1\u2009234\u2009567."),
        ("1234567", "So we get $1\\,234\\,567$."),
        ("1,234,567", "The answer is 1 234 567."),
        ("\\frac{1}{2}", "The answer is one half."),
        ("7", "Seven."),
        ("-23", "The result is negative twenty-three."),
        ("(-\\infty, 3]", "Therefore $x \\le 3$."),
        ("(-\\infty, 3]", "The solution is $\\{x \\mid x \\leq 3\\}$."),
        ("-2 < x \\le 3", "\\boxed{(-2, 3]}"),
        ("(-\\infty,-1)\\cup(2,\\infty)", "So $x < -1$ or $x > 2$."),
        ("2, -3", "The solutions are x = -3 and x = 2."),
        ("\\{2, -3\\}", "Factoring, we get x = 2 or x = -3."),
        ("3 + 4i", "The product is $3 + 4j$."),
        ("(1, 2, 3)", "$\\langle 1, 2, 3 \\rangle$"),
        ("(1, 2, 3)", "$\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}$"),
        ("48", "The area is 48 cm^2."),
        ("12.50", "It costs \\$12.50."),
        ("4", "x = 4 (the root x = -1 is rejected)"),
        ("4", "We get x = 4 or x = -1, but x = -1 is extraneous. So the answer is 4."),
        ("7", "Answer: 5? No, checking shows 5 fails. Final answer: 7"),
    ],
)
def test_a_correct_answer_in_another_notation_scores_one(expected: str, text: str) -> None:
    assert reward(expected, text) == 1.0


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("1234567", "The total is 1\u2009234\u2009576."),
        ("1234", "The answer is 12 34."),
        ("\\frac{1}{2}", "The answer is one third."),
        ("(-\\infty, 3]", "Therefore $x < 3$."),
        ("(-\\infty, 3]", "Therefore $x \\ge 3$."),
        ("[2, 5)", "The solution is $\\{x \\mid 2 \\le x \\le 5\\}$."),
        ("2, -3", "The solutions are x = 2."),
        ("2, -3", "The solutions are 2, -3 and 0."),
        ("3 + 4i", "The product is $3 - 4j$."),
        ("(1, 2, 3)", "$\\langle 2, 1, 3 \\rangle$"),
        ("48", "The area is 49 cm^2."),
        ("3", "The answer is 3i."),
        ("3", "The answer is 3x."),
        ("4", "x = -1 (the root x = 4 is rejected)"),
        ("4", "The solutions are x = 4 and x = -1."),
        ("3", "First I thought \\boxed{3}, but rechecking, the answer is \\boxed{5}."),
        ("3", "#### 3\nwait, that is wrong\n#### 4"),
    ],
)
def test_a_wrong_answer_in_any_notation_scores_zero(expected: str, text: str) -> None:
    assert reward(expected, text) == 0.0


@pytest.mark.parametrize(
    ("expected", "text", "right"),
    [
        ("C", "(C) 12", True),
        ("C", "Answer: C", True),
        ("C", "The correct option is C.", True),
        ("C", "**C**", True),
        ("C", "The answer is 12.", True),
        ("12", "Answer: (C)", True),
        ("12", "I choose option C, which is 12.", True),
        ("C", "(B) 11", False),
        ("C", "The answer is 11.", False),
        ("12", "Answer: B", False),
        ("C", "The answer is 14.", False),
    ],
)
def test_multiple_choice_letter_and_option_text_are_one_answer(
    expected: str, text: str, right: bool
) -> None:
    assert reward(expected, text, options=OPTIONS) == (1.0 if right else 0.0)
    as_object = dict(zip("ABCD", OPTIONS, strict=True))
    assert reward(expected, text, options=as_object) == (1.0 if right else 0.0)


def test_what_was_read_is_reported() -> None:
    result = check({"expected_answer": "4"}, "x = 4 (the root x = -1 is rejected)", {})
    assert result.details["extracted"] == "x = 4"
    assert result.components == {"correct": 1.0, "format": 0.0}


@pytest.mark.parametrize(
    ("expected", "text", "right"),
    [
        ("144", "12^2 = 144, so there are 144 tiles in total.", True),
        ("144", "So the number of tiles is $\\mathbf{144}$.", True),
        ("144", "There are one hundred forty-four tiles.", True),
        ("144", "There are 12 rows of 12, i.e. 124 tiles.", False),
        ("\\frac{2}{3}", "P = 2/3 ≈ 0.667", True),
        ("\\frac{2}{3}", "The probability is 0.6667.", False),
        ("(2, \\infty)", "The inequality holds for all x > 2.", True),
        ("(2, \\infty)", "The inequality holds for all x ≥ 2.", False),
        ("[-1, 1]", "Answer: $|x| \\le 1$", True),
        ("-5, 5", "x = ±5", True),
        ("-5, 5", "x = 5", False),
        ("1 - 2i", "z = 1 − 2i", True),
        ("(3, -4)", "The point is (-4, 3).", False),
        ("2500000", "About 2.5 million people.", True),
        ("2500000", "25 000 000", False),
        ("6", "Hmm, \\boxed{6}? Actually no, the area is \\boxed{8}.", False),
    ],
)
def test_styles_written_after_the_rules_were_fixed(expected: str, text: str, right: bool) -> None:
    assert reward(expected, text) == (1.0 if right else 0.0)


def test_the_letter_decides_over_a_mentioned_option() -> None:
    text = "Both (A) and (B) look plausible, but (A) is correct."
    assert reward("B", text, options=["10", "20", "30", "40"]) == 0.0
    assert reward("B", "Option (B) is correct.", options=["10", "20", "30", "40"]) == 1.0

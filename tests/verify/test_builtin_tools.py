"""Tools of the built-in verifiers: the math calculator evaluates arithmetic and nothing else."""

from __future__ import annotations

import pytest

from gym_operator.verify.base import get_tools

calculator = get_tools("math")["calculator"]


@pytest.mark.parametrize(
    ("expression", "answer"),
    [
        ("6*7", {"result": "42"}),
        ("(1 + 2) ** 3 - 10 // 3", {"result": "24"}),
        ("-2.5 * 4", {"result": "-10.0"}),
        ("7 % 3", {"result": "1"}),
    ],
)
def test_arithmetic(expression: str, answer: dict) -> None:
    assert calculator({"expression": expression}, {}, {}) == answer


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("1/0", "ZeroDivisionError"),
        ("2 ** 100000", "exponent too large"),
        ("999 ** 999 * 999 ** 999 * 999 ** 999 * 999 ** 999", "digits"),
        ("__import__('os').system('id')", "unsupported"),
        ("x + 1", "unsupported"),
        ("'a' * 3", "unsupported"),
        ("1 +", "SyntaxError"),
        ("9" * 600, "longer than"),
    ],
)
def test_anything_else_is_an_error_answer(expression: str, error: str) -> None:
    assert error in calculator({"expression": expression}, {}, {})["error"]


def test_calls_are_counted_in_the_session_state() -> None:
    state: dict = {}
    calculator({"expression": "1"}, state, {})
    calculator({"expression": "2"}, state, {})
    assert state["tool_calls"] == 2
    assert get_tools("exact_match") == {}

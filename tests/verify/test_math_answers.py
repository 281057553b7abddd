"""The math verifier: equivalent forms, extraction rules, empty answers, reasoning vs final text."""

from __future__ import annotations

import pytest
from verifykit import make_response, post_verify

from gym_operator.verify.base import VerifierError, get_verifier

check = get_verifier("math")


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("0.5", "The answer is \\boxed{\\frac{1}{2}}"),
        ("1/2", "So \\boxed{0.5}."),
        ("\\frac{1}{2}", "Thus the probability is $\\frac{1}{2}$."),
        ("1000", "\\boxed{1,000}"),
        ("1,000", "The total is \\boxed{1000}"),
        ("1000", "Adding up the sales... #### 1,000"),
        ("5", "\\boxed{5 \\text{ cm}}"),
        ("5", "The side is 5 cm."),
        ("x + 1", "\\boxed{1 + x}"),
        ("\\boxed{3}", "\\boxed{3}"),
        ("3", "First I thought \\boxed{2}, but rechecking, the answer is \\boxed{3}."),
        ("7", "#### 6\nwait, let me redo it\n#### 7"),
        ("5 cm", "\\boxed{5}"),
        ("\\$1,000", "It costs \\boxed{1000} dollars"),
        ("$\\frac{1}{2}$", "#### 0.5"),
        (42, "#### 42"),
    ],
)
def test_equivalent_answers_score_one(expected: str, text: str) -> None:
    assert check({"expected_answer": expected}, text, {}).reward == 1.0


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("2", "First I thought \\boxed{2}, but rechecking, the answer is \\boxed{3}."),
        ("0.5", "\\boxed{0.25}"),
        ("1000", "\\boxed{100}"),
        ("5", ""),
        ("5", "   \n "),
        ("5", "\\boxed{}"),
        ("12", "I am not sure."),
    ],
)
def test_wrong_or_empty_answers_score_zero(expected: str, text: str) -> None:
    assert check({"expected_answer": expected}, text, {}).reward == 0.0


def test_a_list_of_accepted_references() -> None:
    task = {"expected_answer": ["2", "-2"]}
    assert check(task, "x = \\boxed{-2}", {}).reward == 1.0
    assert check(task, "\\boxed{3}", {}).reward == 0.0
    assert check({"expected_answer": 42}, "#### 42", {}).reward == 1.0
    with pytest.raises(VerifierError):
        check({"expected_answer": []}, "1", {})


def test_components_report_format_and_correctness() -> None:
    marked = check({"expected_answer": "4"}, "\\boxed{4}", {})
    unmarked = check({"expected_answer": "4"}, "the answer is 4", {})
    assert marked.components == {"correct": 1.0, "format": 1.0}
    assert unmarked.components == {"correct": 1.0, "format": 0.0}


def test_boxed_mode_requires_a_box() -> None:
    assert check({"expected_answer": "4"}, "the answer is 4", {"extraction": "boxed"}).reward == 0
    assert check({"expected_answer": "4"}, "#### 4", {"extraction": "gsm8k"}).reward == 1.0


def test_missing_reference_is_a_verifier_error_not_a_zero() -> None:
    with pytest.raises(VerifierError, match="expected_answer"):
        check({}, "\\boxed{1}", {})
    with pytest.raises(VerifierError, match="extraction"):
        check({"expected_answer": "1"}, "1", {"extraction": "magic"})


async def test_final_text_wins_over_reasoning(verifier_server, http) -> None:
    url = await verifier_server("math")
    # the reasoning block holds the right answer, the final text a wrong one: 0.
    status, answer = await post_verify(
        http, url, {"expected_answer": "3"}, "<think>it is \\boxed{3}</think>Final: \\boxed{4}"
    )
    assert (status, answer["reward"]) == (200, 0.0)
    # and the other way round: 1.
    status, answer = await post_verify(
        http, url, {"expected_answer": "4"}, "<think>maybe \\boxed{3}</think>Final: \\boxed{4}"
    )
    assert (status, answer["reward"]) == (200, 1.0)
    # a reasoning output item is not the final text either.
    body = {"expected_answer": "3", "response": make_response("\\boxed{4}", reasoning="\\boxed{3}")}
    async with http.post(f"{url}/verify", json=body) as resp:
        assert (await resp.json())["reward"] == 0.0
    # reasoning that never closed: the response has no final answer.
    status, answer = await post_verify(http, url, {"expected_answer": "3"}, "<think>\\boxed{3}")
    assert (status, answer["reward"]) == (200, 0.0)

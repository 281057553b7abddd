"""exact_match normalisation options and mcqa letter extraction modes."""

from __future__ import annotations

import pytest

from gym_operator.verify.base import VerifierError, get_verifier

exact = get_verifier("exact_match")
mcqa = get_verifier("mcqa")


@pytest.mark.parametrize(
    ("expected", "text", "config", "reward"),
    [
        ("Paris", "  paris ", {}, 1.0),
        ("Paris", "PARIS", {"caseInsensitive": False}, 0.0),
        ("New  York", "new york", {}, 1.0),
        ("Paris", "Paris.", {}, 0.0),
        ("Paris", "Paris.", {"ignorePunctuation": True}, 1.0),
        ("the Eiffel Tower", "Eiffel tower", {"stripArticles": True}, 1.0),
        ("1000", "1,000", {"stripThousandsSeparators": True}, 1.0),
        ("1000", "1,000", {}, 0.0),
        (["NYC", "New York"], "new york", {}, 1.0),
        ("Paris", "", {}, 0.0),
        ("Paris", "I think it is Paris, France", {"mode": "contains"}, 1.0),
        ("Par", "I think it is Paris", {"mode": "contains"}, 0.0),
        ("42", "Let me compute.\n\n42\n", {"mode": "lastLine"}, 1.0),
    ],
)
def test_exact_match_normalisation(expected, text, config, reward) -> None:
    assert exact({"expected_answer": expected}, text, config).reward == reward


def test_exact_match_missing_field_is_an_error() -> None:
    with pytest.raises(VerifierError, match="answer"):
        exact({"expected_answer": "x"}, "x", {"answerField": "answer"})


OPTIONS = ["Berlin", "Paris", "Rome", "Madrid"]


@pytest.mark.parametrize(
    ("text", "mode", "chosen"),
    [
        ("Reasoning... Answer: B", "strict", "B"),
        ("Answer: (b)", "strict", "B"),
        ("I pick B", "strict", None),
        ("Answer: A\nOn reflection, Answer: B", "strict", "B"),
        ("\\boxed{B}", "boxed", "B"),
        ("\\boxed{\\text{(C)}}", "boxed", "C"),
        ("B is wrong, C is right", "first", "B"),
        ("B is wrong, C is right", "last", "C"),
        ("The answer is (B).", "auto", "B"),
        ("B", "auto", "B"),
        ("Answer: E", "auto", None),
        ("Answer: a bit unclear, but I lean to C", "strict", None),
        ("The answer is a tricky one; answer is (c)", "auto", "C"),
        ("Answer:B", "strict", "B"),
        ("", "auto", None),
    ],
)
def test_mcqa_extraction_modes(text, mode, chosen) -> None:
    result = mcqa({"options": OPTIONS, "expected_answer": "B"}, text, {"extraction": mode})
    assert result.details["extracted"] == chosen
    assert result.reward == (1.0 if chosen == "B" else 0.0)
    assert result.components["format"] == (0.0 if chosen is None else 1.0)


def test_mcqa_answer_may_be_the_option_text_and_options_a_mapping() -> None:
    task = {"options": {"A": "Berlin", "B": "Paris"}, "expected_answer": "Paris"}
    assert mcqa(task, "Answer: B", {}).reward == 1.0
    assert mcqa(task, "Answer: A", {}).reward == 0.0
    assert mcqa({"options": OPTIONS, "expected_answer": "(b)"}, "Answer: B", {}).reward == 1.0


def test_mcqa_bad_answer_is_an_error() -> None:
    with pytest.raises(VerifierError, match="neither"):
        mcqa({"options": OPTIONS, "expected_answer": "Lisbon"}, "Answer: A", {})

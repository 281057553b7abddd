"""The math verifier's extraction and normalisation take linear time on hostile responses."""

from __future__ import annotations

import time

import pytest

from gym_operator.verify.base import get_verifier
from gym_operator.verify.builtins.math_equivalence import normalise
from gym_operator.verify.builtins.math_extract import extract

HOSTILE = {
    "open boxes": "\\boxed{" * 12000,
    "think tags": "<think>" * 24000,
    "closed boxes": "\\boxed{1}" * 20000,
    "nested braces": "{" * 50000 + "}" * 50000,
    "spaces": " " * 100000 + "x",
    "anchors": "the answer is " * 10000,
    "parentheses": "(" * 50000,
    "dollars": "$" * 50001,
    "digit groups": "1 " * 50000,
    "number words": "twenty " * 20000,
    "rejections": "(rejected " * 10000,
    "angle brackets": "<" * 50000,
    "matrices": "\\begin{pmatrix}" * 5000,
    "set builders": "\\{x \\mid " * 5000,
    "hashes": "####" * 20000,
    "text wrappers": "\\text{" * 20000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_reading_a_hostile_response_takes_milliseconds(name: str) -> None:
    text = HOSTILE[name]
    started = time.process_time()
    for _ in range(5):
        found = extract(text)
        normalise(found.text if found else "", prose=True)
    # linear work on a bounded tail is well under a millisecond; a quadratic scan of these
    # inputs takes seconds. The bound is generous for a busy machine (CPU time, not wall).
    assert (time.process_time() - started) / 5 < 0.05


@pytest.mark.parametrize("name", ["open boxes", "think tags", "parentheses", "nested braces"])
def test_a_hostile_response_scores_zero_quickly(name: str) -> None:
    check = get_verifier("math")
    check({"expected_answer": "3"}, "1", {})
    started = time.process_time()
    result = check({"expected_answer": "3"}, HOSTILE[name], {})
    assert result.reward == 0.0
    assert time.process_time() - started < 1.0

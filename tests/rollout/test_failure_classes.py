"""Failure classes: the values failure rows and manifests hold, and the verifier counterparts."""

from __future__ import annotations

import json

import pytest

from gym_operator.protocol import failures
from gym_operator.protocol.failures import FailureClass
from gym_operator.rollout.requeue import is_retryable
from gym_operator.rollout.retry import RequestError, RetriesExhausted

WIRE = {
    "timeout",
    "connection",
    "http_5xx",
    "http_429",
    "http_4xx",
    "malformed",
    "answer_too_large",
    "verifier_timeout",
    "verifier_connection",
    "verifier_http_5xx",
    "verifier_http_429",
    "verifier_http_4xx",
    "verifier_malformed",
    "verifier_answer_too_large",
    "verifier_unscorable",
    "verifier_tool",
}
"""What earlier runs wrote: a resumed job reads these back, so they never change."""


def test_the_values_on_the_wire_are_the_ones_earlier_runs_wrote() -> None:
    assert {str(c) for c in FailureClass} == WIRE
    assert json.dumps({"class": FailureClass.VERIFIER_TOOL}) == '{"class": "verifier_tool"}'


@pytest.mark.parametrize("request_class", [c for c in FailureClass if not c.at_verifier])
def test_a_request_failure_met_while_verifying_is_its_verifier_class(
    request_class: FailureClass,
) -> None:
    at_verifier = request_class.verifying()
    assert at_verifier == f"verifier_{request_class}"
    assert at_verifier.at_verifier and at_verifier.request is request_class
    assert at_verifier.verifying() is at_verifier


def test_a_failure_row_names_the_verifier_when_the_verifier_failed() -> None:
    exhausted = RetriesExhausted(RequestError(FailureClass.TIMEOUT, "slow", status=None), 3)
    assert exhausted.failure()["class"] == "timeout"
    assert exhausted.failure(verifying=True)["class"] == "verifier_timeout"
    refused = RetriesExhausted(RequestError(FailureClass.VERIFIER_UNSCORABLE, "422"), 1)
    assert refused.failure(verifying=True)["class"] == "verifier_unscorable"


def test_masked_verdicts_keep_the_verifier_kind_and_are_not_members() -> None:
    assert failures.masked("judge_failed") == "verifier_judge_failed"
    assert failures.parse("verifier_judge_failed") is None
    assert failures.parse("verifier_http_5xx") is FailureClass.VERIFIER_HTTP_5XX


def test_only_failures_another_run_may_fix_are_sampled_again() -> None:
    again = {str(c) for c in FailureClass if is_retryable({"class": str(c)})}
    assert again == {
        "timeout",
        "connection",
        "http_5xx",
        "http_429",
        "malformed",
        "verifier_timeout",
        "verifier_connection",
        "verifier_http_5xx",
        "verifier_http_429",
        "verifier_malformed",
        "verifier_tool",
    }

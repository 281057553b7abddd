"""Which failures blame the endpoint, and when the breaker trips."""

from __future__ import annotations

import pytest

from gym_operator.rollout.breaker import EndpointBreaker, HeldFailure, is_endpoint_failure


@pytest.mark.parametrize(
    ("failure", "endpoint"),
    [
        ({"class": "connection"}, True),
        ({"class": "timeout"}, True),
        ({"class": "http_5xx", "status": 503}, True),
        ({"class": "http_429", "status": 429}, True),
        ({"class": "malformed"}, True),
        ({"class": "http_4xx", "status": 401}, True),
        ({"class": "http_4xx", "status": 404}, True),
        ({"class": "http_4xx", "status": 400}, False),
        ({"class": "http_4xx", "status": 413}, False),
        ({"class": "verifier_connection"}, True),
        ({"class": "verifier_http_5xx", "status": 502}, True),
        ({"class": "verifier_unscorable"}, True),
        ({"class": "verifier_http_4xx", "status": 400}, True),
        ({"class": "verifier_tool"}, False),
    ],
)
def test_endpoint_failures_are_told_from_task_failures(failure: dict, endpoint: bool) -> None:
    assert is_endpoint_failure(failure) is endpoint


def held(task: int, error_class: str = "connection") -> HeldFailure:
    return HeldFailure(task, 0, {"class": error_class}, f"cannot connect ({task})")


def test_the_limit_trips_once_and_names_what_failed() -> None:
    breaker = EndpointBreaker(3)
    assert not breaker.hold(held(0, "timeout"))
    assert not breaker.hold(held(1))
    assert breaker.hold(held(2))
    assert not breaker.hold(held(3))  # tripped already: held, not tripped again
    assert breaker.tripped
    assert breaker.reason.startswith("endpoint unavailable: 3 rollouts in a row failed")
    assert "connection x2, timeout x1" in breaker.reason
    assert "last error: cannot connect (2); check that policy.baseURL is up" in breaker.reason


@pytest.mark.parametrize(
    ("failure", "check"),
    [
        ({"class": "http_4xx", "status": 401}, "check the API key (policy.apiKeyEnv"),
        ({"class": "http_4xx", "status": 404}, "check policy.baseURL (OpenAI-compatible"),
        ({"class": "timeout"}, "check that policy.baseURL is up"),
        ({"class": "verifier_http_4xx", "status": 404}, "check verifier.url"),
        ({"class": "verifier_connection"}, "check that the verifier (verifier.url"),
        ({"class": "verifier_unscorable", "status": 422}, "check spec.verifier.config"),
    ],
)
def test_the_reason_says_which_fields_to_check(failure: dict, check: str) -> None:
    breaker = EndpointBreaker(1)
    breaker.hold(HeldFailure(0, 0, failure, "HTTP error"))
    assert check in breaker.reason


def test_an_answer_releases_the_held_failures_and_restarts_the_count() -> None:
    breaker = EndpointBreaker(3)
    breaker.hold(held(0))
    breaker.hold(held(1))
    assert [h.task_index for h in breaker.release()] == [0, 1]
    assert not breaker.hold(held(2))
    assert not breaker.tripped


def test_limit_zero_never_trips() -> None:
    breaker = EndpointBreaker(0)
    assert not any(breaker.hold(held(i)) for i in range(1000))
    assert len(breaker.release()) == 1000


def test_answers_are_counted_and_release_what_was_held() -> None:
    breaker = EndpointBreaker(5)
    breaker.hold(held(0))
    assert [h.task_index for h in breaker.answered()] == [0]
    assert breaker.answered() == []
    assert breaker.answers == 2 and not breaker.held


def test_a_shard_that_ends_with_failures_held_and_no_answer_trips() -> None:
    """The endpoint never answered in this run: the held rollouts are sampled again later."""
    breaker = EndpointBreaker(5)
    breaker.hold(held(0))
    breaker.hold(held(1))
    assert breaker.settle() is None
    assert breaker.tripped and "2 rollouts in a row failed" in breaker.reason


def test_a_shard_that_ends_with_failures_held_after_an_answer_records_them() -> None:
    breaker = EndpointBreaker(5)
    breaker.answered()
    breaker.hold(held(7))
    assert [h.task_index for h in breaker.settle() or []] == [7]
    assert not breaker.tripped


def test_limit_zero_records_what_was_held_at_the_end_even_with_no_answer() -> None:
    breaker = EndpointBreaker(0)
    breaker.hold(held(3))
    assert [h.task_index for h in breaker.settle() or []] == [3]
    assert not breaker.tripped

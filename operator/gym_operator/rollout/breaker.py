"""Stop a shard whose model or verifier endpoint is down, instead of failing every rollout.

A rollout that fails on the endpoint itself (unreachable, timeouts, 5xx, 429 past the retry
budget, 401/403/404, answers that are not JSON, any 4xx of the verifier) is held back, not
recorded. The next rollout that ends any other way shows the endpoint answers: the held ones
are released as ordinary failure rows. `limit` held in a row trips the breaker: the shard
stops, and the held rollouts are dropped, so a restarted shard samples them again instead of
keeping them as failures. A shard that ends with failures still held, having had no answer at
all, trips the breaker too: the endpoint never answered (on a cluster, a verifier whose pods are
not ready yet).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from gym_operator import errors
from gym_operator.protocol import failures
from gym_operator.protocol.failures import FailureClass

ENDPOINT_CLASSES = frozenset(
    {
        FailureClass.TIMEOUT,
        FailureClass.CONNECTION,
        FailureClass.HTTP_5XX,
        FailureClass.HTTP_429,
        FailureClass.MALFORMED,
    }
)
"""Request classes that blame the endpoint, met at the model or at the verifier."""
ENDPOINT_STATUSES = frozenset({401, 403, 404})
"""4xx answers that say the endpoint, key or model is wrong, not the one request."""
VERIFIER_REFUSALS = frozenset({FailureClass.VERIFIER_UNSCORABLE, FailureClass.VERIFIER_HTTP_4XX})


def is_endpoint_failure(failure: dict[str, Any]) -> bool:
    """Whether a failure row's `failure` blames the model or verifier endpoint, not the task.

    A verifier's 4xx answers (422 `verifier_unscorable` included) count too: one is a bad row,
    but a verifier that refuses `limit` answers in a row is misconfigured, not unlucky.
    """
    error_class = failures.parse(failure.get("class"))
    if error_class is None:
        return False
    if error_class in VERIFIER_REFUSALS:
        return True
    if error_class is FailureClass.HTTP_4XX:
        return failure.get("status") in ENDPOINT_STATUSES
    return error_class.request in ENDPOINT_CLASSES


@dataclass(frozen=True)
class HeldFailure:
    """A failure row not yet recorded: (task index, repeat, failure object, log message)."""

    task_index: int
    repeat: int
    failure: dict[str, Any]
    message: str


class EndpointDown(errors.EndpointUnavailable):
    """The shard stopped because its endpoint failed `limit` rollouts in a row."""


class EndpointBreaker:
    """Counts endpoint failures in a row; `limit` 0 never trips (every failure is recorded)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held: list[HeldFailure] = []
        self.tripped = False
        self.answers = 0
        """Rollouts of this run that ended other than on the endpoint (it answers)."""
        self.reason = ""
        """What the held failures were when the breaker tripped (see `describe`)."""

    def hold(self, failure: HeldFailure) -> bool:
        """Hold one endpoint failure; True when this one trips the breaker."""
        self.held.append(failure)
        if self.limit and not self.tripped and len(self.held) >= self.limit:
            self.tripped = True
            self.reason = self.describe()
            return True
        return False

    def trip(self) -> None:
        """Stop the shard on the failures held so far (it ended with no answer after them)."""
        self.tripped = True
        self.reason = self.describe()

    def release(self) -> list[HeldFailure]:
        """The held failures, to record now (the endpoint answered); the count restarts."""
        held, self.held = self.held, []
        return held

    def answered(self) -> list[HeldFailure]:
        """Count a rollout that ended other than on the endpoint; the held failures, to record
        now (the endpoint answers, so they were the rollouts' own)."""
        self.answers += 1
        return self.release() if self.held else []

    def settle(self) -> list[HeldFailure] | None:
        """The shard ran out of work: the held failures to record, or None when the endpoint
        never answered in this run, which trips the breaker (they are sampled again later)."""
        if self.held and self.limit and not self.answers:
            self.trip()
            return None
        return self.release()

    def describe(self) -> str:
        """Why the breaker tripped: `endpoint unavailable: 50 rollouts in a row failed
        (connection x50); last error: ...; check ...`."""
        if not self.held:
            return "endpoint unavailable"
        classes = Counter(str(h.failure.get("class")) for h in self.held)
        summary = ", ".join(f"{name} x{count}" for name, count in classes.most_common())
        last = self.held[-1]
        return (
            f"endpoint unavailable: {len(self.held)} rollouts in a row failed ({summary}); "
            f"last error: {last.message[:300]}; {hint(last.failure)}"
        )


def hint(failure: dict[str, Any]) -> str:
    """What to check for an endpoint failure, naming the spec fields involved."""
    status = failure.get("status")
    error_class = failures.parse(failure.get("class"))
    if error_class in VERIFIER_REFUSALS:
        if status == 404:
            return "check verifier.url (or the verifier Service): it serves no /verify"
        return (
            "the verifier refuses every answer: check spec.verifier.config and the task fields "
            "it reads (e.g. expected_answer)"
        )
    if error_class is not None and error_class.at_verifier:
        if status == 404:
            return "check verifier.url (or the verifier Service): it serves no /verify"
        return "check that the verifier (verifier.url or its Service) is up and reachable"
    if status in (401, 403):
        return "check the API key (policy.apiKeyEnv, policy.apiKeySecretRef)"
    if status == 404:
        return "check policy.baseURL (OpenAI-compatible servers serve under /v1) and policy.model"
    return "check that policy.baseURL is up and reachable from here"

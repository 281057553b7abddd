"""The preflight: one trial rollout before any shard starts; a job that cannot work stops at once.

It samples one answer to the input's first valid task and sends it to `/verify` (through the
tool loop, with its `/seed_session`, when the task has tools). Nothing is written: when either
call fails, PreflightFailed says what failed and which spec fields to check; the shards then
sample that task again as usual.
"""

from __future__ import annotations

import itertools
from typing import Any

from gym_operator import errors
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.protocol import verify as protocol_verify
from gym_operator.protocol.failures import FailureClass
from gym_operator.rollout import tool_loop
from gym_operator.rollout.breaker import ENDPOINT_CLASSES, hint
from gym_operator.rollout.client import ModelClient, merge_params
from gym_operator.rollout.retry import RequestError, RetriesExhausted, RetryPolicy, call_with_retry
from gym_operator.rollout.tasks import Task, iter_shard
from gym_operator.rollout.verifier_client import VerifierClient
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri

SCAN_ROWS = 1000
"""Input rows looked at for a valid task (bad rows are the errors file's business)."""


class PreflightFailed(errors.EndpointUnavailable):
    """The trial rollout failed; nothing was written. The message says what to check.

    `unavailable`: the endpoint did not answer (unreachable, timeouts, 5xx, 429), which a wait
    may cure; otherwise it answered a refusal (a wrong URL, key, model or verifier config)."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


def first_task(storage: Storage, spec: RolloutJobSpec) -> Task | None:
    """The input's first valid task row, or None when the first rows hold none."""
    rows = iter_shard(
        storage,
        parse_uri(spec.input.uri),
        shard=0,
        num_shards=1,
        limit=spec.input.limit,
        max_row_bytes=spec.input.max_row_bytes,
    )
    for item in itertools.islice(rows, SCAN_ROWS):
        if isinstance(item, Task):
            return item
    return None


async def run_preflight(
    spec: RolloutJobSpec,
    task: Task,
    model: ModelClient,
    verifier: VerifierClient,
) -> float:
    """Sample one answer to `task` and verify it; returns the score, or raises PreflightFailed."""
    params = merge_params(
        task.row["responses_create_params"], spec.sampling.params.model_dump(exclude_none=True)
    )
    if spec.sampling.seed_per_repeat:
        params["seed"] = 0
    retry = spec.retry
    policy = RetryPolicy(
        max_attempts=retry.max_attempts,
        timeout=retry.request_timeout_seconds,
        budget=retry.max_retry_seconds,
        backoff_base=retry.backoff_base_seconds,
        backoff_max=retry.backoff_max_seconds,
    )

    async def sample(request: dict[str, Any]) -> dict[str, Any]:
        body = model.request_body(request)
        try:
            outcome = await call_with_retry(lambda t: model.create(body, t), policy)
        except RetriesExhausted as exc:
            raise PreflightFailed(
                _model_failure(exc, model.url), unavailable=_unavailable(exc.last)
            ) from None
        return outcome.value

    session: dict[str, str] | None = None
    if params.get("tools"):
        try:
            loop = await tool_loop.run_tool_loop(
                sample,
                verifier.session,
                verifier.base_url,
                task.row,
                params,
                spec.sampling.max_turns,
                tool_timeout=spec.verifier.timeout_seconds,
            )
        except tool_loop.ToolLoopError as exc:
            raise PreflightFailed(
                f"preflight: the tool loop of task {task.index} failed against the verifier "
                f"({verifier.base_url}): {exc}; check that the verifier serves /seed_session "
                "and the task's tools"
            ) from None
        response, session = loop.response, loop.session_headers
    else:
        response = await sample(params)
    return await _verify(spec, task, response, verifier, session)


async def _verify(
    spec: RolloutJobSpec,
    task: Task,
    response: dict[str, Any],
    verifier: VerifierClient,
    session: dict[str, str] | None,
) -> float:
    policy = RetryPolicy(
        max_attempts=spec.verifier.max_attempts,
        timeout=spec.verifier.timeout_seconds,
        budget=spec.verifier.timeout_seconds * spec.verifier.max_attempts + 60,
        backoff_base=0.5,
        backoff_max=10,
    )
    try:
        outcome = await call_with_retry(
            lambda t: verifier.verify(task.row, response, t, session), policy
        )
    except RetriesExhausted as exc:
        raise PreflightFailed(
            _verifier_failure(exc, task, verifier.url), unavailable=_unavailable(exc.last)
        ) from None
    verdict = outcome.value
    if isinstance(verdict, protocol_verify.Masked):
        raise PreflightFailed(
            f"preflight: the verifier ({verifier.url}) answered that task {task.index}'s score is "
            f"not a measurement ({verdict.kind}: {verdict.reason}); check the verifier's own "
            "dependencies (e.g. its judge)"
        )
    return verdict.score


def _model_failure(exc: RetriesExhausted, url: str) -> str:
    last: RequestError = exc.last
    failure = {"class": last.error_class, "status": last.status}
    return (
        f"preflight: the model request to {url} failed after {exc.attempts} attempt(s) "
        f"({last.error_class}: {last.message[:300]}); nothing was written. "
        f"{_sentence(hint(failure))}"
    )


def _verifier_failure(exc: RetriesExhausted, task: Task, url: str) -> str:
    last: RequestError = exc.last
    if last.error_class == FailureClass.VERIFIER_UNSCORABLE:
        what = (
            "check spec.verifier.config and the task fields the verifier reads "
            "(e.g. expected_answer)"
        )
    else:
        what = hint({**exc.failure(verifying=True), "status": last.status})
    return (
        f"preflight: {url} could not score the answer to task {task.index} "
        f"({last.error_class}: {last.message[:300]}); nothing was written. {_sentence(what)}"
    )


def _unavailable(error: RequestError) -> bool:
    """Whether the endpoint did not answer at all (as opposed to refusing the request)."""
    return error.error_class in ENDPOINT_CLASSES


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."

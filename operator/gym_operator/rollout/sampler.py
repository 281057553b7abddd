"""One (task, repeat) turned into a rollout, a failure or nothing, in two halves.

`answer` is the model side: the model call (or the tool loop, or the agent) with its retries,
each attempt holding a slot of the concurrency window only while its request is out. `score` is
the verifier side: /verify with its own retries and the reward. `roll_out` is both in a row; a
shard runs the halves apart (generator) so that sampling never waits for verification. Nothing
here counts, buffers or commits: the outcome says what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gym_operator import metrics
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.protocol import failures
from gym_operator.protocol import rows as protocol_rows
from gym_operator.protocol.failures import FailureClass
from gym_operator.protocol.response import is_truncated
from gym_operator.protocol.verify import Masked, Verdict
from gym_operator.rollout import tool_loop
from gym_operator.rollout.agent_client import AgentClient
from gym_operator.rollout.client import ModelClient, merge_params
from gym_operator.rollout.retry import RequestError, RetriesExhausted, RetryPolicy, call_with_retry
from gym_operator.rollout.reward import make_reward_fn
from gym_operator.rollout.tasks import Task
from gym_operator.rollout.verifier_client import VerifierClient
from gym_operator.rollout.window import AimdWindow


@dataclass(frozen=True)
class Clients:
    """The model and verifier clients a shard uses (shared across shards of one process)."""

    model: ModelClient
    verifier: VerifierClient
    agent: AgentClient | None = None


@dataclass(frozen=True)
class Answer:
    """The model's answer to one (task, repeat), not scored yet."""

    task: Task
    repeat: int
    response: dict[str, Any]
    session: dict[str, str] | None = None


@dataclass(frozen=True)
class Rollout:
    """A scored rollout: its row (with `reward`), whether it passed, whether it was truncated."""

    task: Task
    repeat: int
    row: dict[str, Any]
    passed: bool
    truncated: bool


@dataclass(frozen=True)
class Failed:
    """A rollout that failed for good: the failure row's `failure` object and a log message."""

    task: Task
    repeat: int
    failure: dict[str, Any]
    message: str


Outcome = Rollout | Failed


class _Dropped(Exception):
    """A model request not started because the shard is stopping (its slot stays undone)."""


def model_policy(spec: RolloutJobSpec) -> RetryPolicy:
    """Retries of one model call (spec.retry)."""
    retry = spec.retry
    return RetryPolicy(
        max_attempts=retry.max_attempts,
        timeout=retry.request_timeout_seconds,
        budget=retry.max_retry_seconds,
        backoff_base=retry.backoff_base_seconds,
        backoff_max=retry.backoff_max_seconds,
    )


def verify_policy(spec: RolloutJobSpec) -> RetryPolicy:
    """Retries of one /verify call (spec.verifier)."""
    ver = spec.verifier
    return RetryPolicy(
        max_attempts=ver.max_attempts,
        timeout=ver.timeout_seconds,
        budget=ver.timeout_seconds * ver.max_attempts + 60,
        backoff_base=0.5,
        backoff_max=10,
    )


class Sampler:
    """Samples and scores rollouts of one job; `stopping()` True drops requests not yet sent."""

    def __init__(
        self,
        spec: RolloutJobSpec,
        clients: Clients,
        window: AimdWindow,
        stopping: Callable[[], bool],
    ) -> None:
        self.spec = spec
        self.clients = clients
        self.window = window
        self.stopping = stopping
        self.reward_fn = make_reward_fn(spec.reward)
        self.overrides = spec.sampling.params.model_dump(exclude_none=True)
        self.model_policy = model_policy(spec)
        self.verify_policy = verify_policy(spec)

    async def roll_out(self, task: Task, repeat: int) -> Outcome | None:
        """The rollout, its failure, or None when the shard stopped before its request went out."""
        first = await self.answer(task, repeat)
        if isinstance(first, Answer):
            return await self.score(first)
        return first

    async def answer(self, task: Task, repeat: int) -> Answer | Outcome | None:
        """The model side: an answer to score, a failure, or None (stopping). In agent mode the
        agent scores too, so the outcome comes back whole."""
        if self.clients.agent is not None:
            return await self._agent_rollout(task, repeat)
        params = merge_params(task.row["responses_create_params"], self.overrides)
        if self.spec.sampling.seed_per_repeat:
            params["seed"] = repeat
        try:
            if params.get("tools"):
                loop = await tool_loop.run_tool_loop(
                    self._sample,
                    self.clients.verifier.session,
                    self.clients.verifier.base_url,
                    task.row,
                    params,
                    self.spec.sampling.max_turns,
                    tool_timeout=self.spec.verifier.timeout_seconds,
                    limits=tool_loop.ToolLimits(
                        self.spec.sampling.max_tool_calls_per_turn,
                        self.spec.sampling.max_tool_calls,
                    ),
                )
                return Answer(task, repeat, loop.response, loop.session_headers)
            return Answer(task, repeat, await self._sample(params))
        except RetriesExhausted as exc:
            return Failed(task, repeat, exc.failure(), exc.last.message)
        except _Dropped:
            return None
        except tool_loop.ToolLoopError as exc:
            return Failed(
                task,
                repeat,
                protocol_rows.failure(FailureClass.VERIFIER_TOOL, str(exc), 1),
                str(exc),
            )

    async def score(self, answer: Answer) -> Outcome:
        """The verifier side: the scored rollout, or a verifier failure."""
        try:
            verdict = (
                await call_with_retry(
                    lambda timeout: self._verify_attempt(answer, timeout),
                    self.verify_policy,
                    on_retry=lambda e: metrics.RETRIES.labels("verifier", e.error_class).inc(),
                )
            ).value
        except RetriesExhausted as exc:
            failure = exc.failure(verifying=True)
            return Failed(answer.task, answer.repeat, failure, exc.last.message)
        return self._outcome(answer.task, answer.repeat, answer.response, verdict)

    def _outcome(
        self, task: Task, repeat: int, response: dict[str, Any], verdict: Verdict | Masked
    ) -> Outcome:
        """A real score becomes a rollout; a masked one (judge down, ...) a failure."""
        if isinstance(verdict, Masked):
            failure = protocol_rows.failure(
                failures.masked(verdict.kind), verdict.reason, 1, masked=True
            )
            return Failed(task, repeat, failure, verdict.reason)
        reward, components = self.reward_fn(verdict.score, verdict.components, response)
        row = protocol_rows.rollout_row(
            task.row, (task.index, repeat), response, reward, components, verdict.extras
        )
        passed = reward >= self.spec.reward.pass_threshold
        return Rollout(task, repeat, row, passed, is_truncated(response))

    async def _agent_rollout(self, task: Task, repeat: int) -> Outcome | None:
        """Agent mode: the agent samples and verifies; retried here."""
        params = merge_params(task.row["responses_create_params"], self.overrides)
        try:
            outcome = await call_with_retry(
                lambda timeout: self._agent_attempt(task.row, params, timeout),
                self.model_policy,
                on_retry=lambda e: metrics.RETRIES.labels("model", e.error_class).inc(),
            )
        except RetriesExhausted as exc:
            return Failed(task, repeat, exc.failure(), exc.last.message)
        except _Dropped:
            return None
        response, verdict = outcome.value
        return self._outcome(task, repeat, response, verdict)

    async def _agent_attempt(
        self, row: dict[str, Any], params: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], Verdict | Masked]:
        assert self.clients.agent is not None
        await self.window.acquire()
        if self.stopping():
            self.window.release()
            raise _Dropped
        try:
            result = await self.clients.agent.run(row, params, timeout)
        finally:
            self.window.release()
        self.window.on_success()
        return result

    async def _sample(self, params: dict[str, Any]) -> dict[str, Any]:
        """One model call with retries (RetriesExhausted when it fails for good)."""
        body = self.clients.model.request_body(params)
        outcome = await call_with_retry(
            lambda timeout: self._model_attempt(body, timeout),
            self.model_policy,
            on_retry=lambda e: metrics.RETRIES.labels("model", e.error_class).inc(),
        )
        return outcome.value

    async def _model_attempt(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        await self.window.acquire()
        if self.stopping():
            self.window.release()
            raise _Dropped
        started = time.perf_counter()
        try:
            raw = await self.clients.model.send(body, timeout)
        except RequestError as exc:
            if exc.error_class == FailureClass.HTTP_429:
                self.window.on_throttle(exc.retry_after)
            raise
        finally:
            latency = time.perf_counter() - started
            metrics.MODEL_LATENCY.observe(latency)
            self.window.release()
        response = self.clients.model.normalise(raw, body)
        usage = response.get("usage") or {}
        self.window.on_success(latency, usage.get("output_tokens"))
        metrics.PROMPT_TOKENS.inc(usage.get("input_tokens") or 0)
        metrics.COMPLETION_TOKENS.inc(usage.get("output_tokens") or 0)
        return response

    async def _verify_attempt(self, answer: Answer, timeout: float) -> Verdict | Masked:
        started = time.perf_counter()
        try:
            return await self.clients.verifier.verify(
                answer.task.row, answer.response, timeout, answer.session
            )
        finally:
            metrics.VERIFIER_LATENCY.observe(time.perf_counter() - started)

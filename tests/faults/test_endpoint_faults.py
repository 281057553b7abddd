"""Model endpoint faults mixed in one run: every rollout completes or ends as a typed failure,
within the retry budget, and no request is sent more than `retry.maxAttempts` times."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from faultkit import (
    TinyVerifier,
    assert_exactly_once,
    job_body,
    prompt_of,
    read_output,
    serve,
    task_row,
    write_tasks,
)

from gym_operator.api import parse_resource
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubConfig, StubModel, start

TASKS, REPEATS, MAX_ATTEMPTS = 120, 2, 3
REQUEST_TIMEOUT, HANG = 5.0, 8.0
"""A request times out only when the stub hangs: its answers take milliseconds, seconds on a
busy machine, never REQUEST_TIMEOUT; a hang lasts longer than the timeout whatever the load."""
RETRY = {"requestTimeoutSeconds": REQUEST_TIMEOUT, "maxRetrySeconds": 4 * HANG}
TYPED = {"http_5xx", "http_429", "timeout", "connection", "malformed", "http_4xx"}


async def run(tmp_path: Path, stub: StubModel, rows: list[dict], **spec: dict) -> tuple:
    stub_runner, base_url = await start(stub)
    verifier = TinyVerifier()
    ver_runner, ver_url = await serve(verifier.app())
    try:
        tasks = write_tasks(tmp_path / "tasks.jsonl", rows)
        body = job_body(tasks, str(tmp_path / "out"), base_url, ver_url, **spec)
        job = parse_resource(body)
        result = await run_job(job.spec, shards=[0])
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()
    storage = Storage()
    return result, read_output(storage, parse_uri(str(tmp_path / "out"))), verifier


async def test_mixed_fault_rates_end_in_rollouts_or_typed_failures(tmp_path: Path) -> None:
    config = StubConfig(
        rate_500=0.05,
        rate_429=0.05,
        retry_after=0.05,
        rate_hang=0.02,
        hang_seconds=HANG,
        rate_reset=0.02,
        rate_malformed=0.01,
        seed=11,
    )
    stub = StubModel(config)
    rows = [task_row(i) for i in range(TASKS)]
    result, out, verifier = await run(
        tmp_path,
        stub,
        rows,
        sampling={"numRepeats": REPEATS, "concurrency": 16},
        retry=RETRY,
    )

    assert result.success
    assert_exactly_once(out, TASKS, REPEATS)
    assert len(out.rollouts) + len(out.failures) == TASKS * REPEATS
    # Every fault kind was injected, and some requests needed a retry.
    assert stub.status_counts[500] > 0 and stub.status_counts[429] > 0
    assert stub.requests > TASKS * REPEATS
    # No (prompt, seed) was sent more than maxAttempts times.
    per_key = {
        (prompt_of(rows[t]), r): stub.counts[(prompt_of(rows[t]), r)] for t, r in out.all_keys()
    }
    assert max(per_key.values()) <= MAX_ATTEMPTS
    assert sum(per_key.values()) == stub.requests
    # A failure is typed, used every attempt it was allowed, and never carries a reward.
    for row in out.failures:
        failure = row["failure"]
        assert failure["class"] in TYPED, failure
        key = (prompt_of(rows[row["_ng_task_index"]]), row["_ng_rollout_index"])
        assert failure["attempts"] == per_key[key] == MAX_ATTEMPTS
        assert "reward" not in row
    # Rewards are exact: the stub answers even seeds right and odd seeds wrong.
    for row in out.rollouts:
        assert row["reward"] == (1.0 if row["_ng_rollout_index"] == 0 else 0.0)
    assert verifier.calls == len(out.rollouts)
    assert sum(m.reward_sum for m in out.manifests) == sum(
        1 for r in out.rollouts if r["_ng_rollout_index"] == 0
    )


# Directive per task: (share of tasks, directive, outcome, attempts the stub sees)
PLAN = [
    (0.05, "#fault:500x1", "rollout", 2),
    (0.05, "#fault:429x2", "rollout", 3),
    (0.02, "#fault:hangx1", "rollout", 2),
    (0.02, "#fault:resetx1", "rollout", 2),
    (0.01, "#fault:malformedx1", "rollout", 2),
    (0.03, "#fault:500x3", "http_5xx", 3),
    (0.02, "#fault:resetx5", "connection", 3),
    (0.02, "#fault:hangx3", "timeout", 3),
    (0.02, "#fault:malformedx3", "malformed", 3),
    (0.02, "#fault:400", "http_4xx", 1),
]


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_each_fault_has_its_exact_outcome_and_attempt_count(tmp_path: Path, api: str) -> None:
    rng = random.Random(5)
    expected: dict[int, tuple[str, int]] = {}
    rows = []
    for index in range(TASKS):
        roll, directive, outcome, attempts = rng.random(), "", "rollout", 1
        for share, plan_directive, plan_outcome, plan_attempts in PLAN:
            if roll < share:
                directive, outcome, attempts = plan_directive, plan_outcome, plan_attempts
                break
            roll -= share
        rows.append(task_row(index, directive))
        expected[index] = (outcome, attempts)
    assert {o for o, _ in expected.values()} >= {"rollout", "http_5xx", "timeout", "http_4xx"}

    stub = StubModel(StubConfig(retry_after=0.05, hang_seconds=HANG))
    result, out, _ = await run(
        tmp_path,
        stub,
        rows,
        sampling={"numRepeats": REPEATS, "concurrency": 16},
        retry=RETRY,
        policy={"api": api},
    )
    assert result.success
    assert_exactly_once(out, TASKS, REPEATS)
    outcome_of = {k: "rollout" for k in out.rollout_keys()}
    outcome_of.update(
        {(r["_ng_task_index"], r["_ng_rollout_index"]): r["failure"]["class"] for r in out.failures}
    )
    for task, (outcome, attempts) in expected.items():
        for repeat in range(REPEATS):
            assert outcome_of[(task, repeat)] == outcome, (task, repeat, rows[task])
            assert stub.counts[(prompt_of(rows[task]), repeat)] == attempts, (task, repeat)
    failed = sum(1 for o, _ in expected.values() if o != "rollout") * REPEATS
    assert len(out.failures) == failed
    assert len(out.rollouts) == TASKS * REPEATS - failed
    assert stub.requests == sum(a for _, a in expected.values()) * REPEATS


async def test_a_retry_after_beyond_the_budget_fails_at_once(tmp_path: Path) -> None:
    """A 429 asking for 30 s against a 3 s retry budget: no waiting, a typed failure now."""
    rows = [task_row(i, "#fault:429x9" if i % 2 else "") for i in range(10)]
    stub = StubModel(StubConfig(retry_after=30))
    started = time.monotonic()
    result, out, _ = await run(
        tmp_path,
        stub,
        rows,
        retry={"requestTimeoutSeconds": 1, "maxRetrySeconds": 3},
    )
    elapsed = time.monotonic() - started
    # Waiting out even one Retry-After would take 30 s; half of that separates the two on a
    # loaded machine (this checks behaviour, not speed).
    assert result.success and elapsed < 15
    assert_exactly_once(out, 10, 2)
    assert sorted({t for t, _ in out.failure_keys()}) == [1, 3, 5, 7, 9]
    for row in out.failures:
        assert row["failure"]["class"] == "http_429" and row["failure"]["attempts"] == 1
        assert "retry budget of 3s exhausted" in row["failure"]["message"]
    assert stub.requests == 20

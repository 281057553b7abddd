"""A rerun samples retryable failure rows again, up to retry.maxRolloutRuns; still one row each."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from ngkit import NemoGym, ask, gymops_run, output_of, write_job, write_tasks

EXIT_TOO_MANY_FAILURES = 6


def _rows_by_slot(job: Path) -> Counter[tuple[int, int]]:
    out = output_of(job)
    rows = [*out.rollouts, *out.failures]
    return Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows)


@pytest.mark.slow
def test_failures_are_retried_on_rerun_until_the_cap(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    def task(tag: str) -> dict:
        return ask(
            f"Capital? {tag} [say: \\boxed{{Paris}}]",
            expected_answer="Paris",
            extraction_mode="boxed",
        )

    # task 1 answers garbage twice per repeat (one run's 2 attempts), task 2 always
    tasks = [task(""), task("[garbage x2]"), task("[garbage x99]")]
    job = write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", tasks),
        model_url=model_url,
        verifier_url=nemo_gym.urls["string_match"],
        failurePolicy={"maxFailedFraction": 0.1, "minFinished": 1},
        retry={
            "maxAttempts": 2,
            "backoffBaseSeconds": 0.01,
            "backoffMaxSeconds": 0.05,
            "maxRolloutRuns": 2,
        },
    )
    first = gymops_run(job)
    assert first.returncode == EXIT_TOO_MANY_FAILURES, first.stdout + first.stderr
    assert {f["_ng_task_index"] for f in output_of(job).failures} == {1, 2}

    second = gymops_run(job)
    assert second.returncode == EXIT_TOO_MANY_FAILURES, second.stdout + second.stderr
    out = output_of(job)
    assert _rows_by_slot(job) == {(t, r): 1 for t in range(3) for r in range(2)}
    assert sorted(r["_ng_task_index"] for r in out.rollouts) == [0, 0, 1, 1]
    assert all(r["reward"] == 1.0 for r in out.rollouts)
    assert [(f["_ng_task_index"], f["failure"]["runs"]) for f in out.failures] == [(2, 2), (2, 2)]
    manifest = json.loads((tmp_path / "out" / "shard-00000" / "_manifest.json").read_text())
    assert manifest["failed"] == 2 and manifest["completed"] == 4

    third = gymops_run(job)  # the cap is reached: nothing is sampled again
    assert third.returncode == EXIT_TOO_MANY_FAILURES
    assert output_of(job).failures == out.failures
    assert _rows_by_slot(job) == {(t, r): 1 for t in range(3) for r in range(2)}
    assert not (tmp_path / "out" / "_SUCCESS").exists()

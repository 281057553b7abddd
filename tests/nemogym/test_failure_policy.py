"""A job that mostly failed is not a success: `gymops run` exits 6 naming why, and no _SUCCESS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ngkit import NemoGym, ask, gymops_run, output_of, write_job, write_tasks

EXIT_TOO_MANY_FAILURES = 6


def _string_tasks(count: int, garbage: set[int]) -> list[dict]:
    rows = []
    for i in range(count):
        tag = "[garbage]" if i in garbage else "[say: \\boxed{Paris}]"
        rows.append(
            ask(f"Capital of France? {tag}", expected_answer="Paris", extraction_mode="boxed")
        )
    return rows


def _job(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str, count: int, garbage: set[int], **spec: Any
) -> Path:
    """A string_match job over `count` questions, those in `garbage` answered with garbage."""
    return write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", _string_tasks(count, garbage)),
        model_url=model_url,
        verifier_url=nemo_gym.urls["string_match"],
        **spec,
    )


@pytest.mark.slow
def test_an_endpoint_answering_garbage_fails_the_job_with_the_reason(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    # The first task answers well, so the preflight passes; the other five get garbage.
    job = _job(tmp_path, nemo_gym, model_url, 6, set(range(1, 6)))
    done = gymops_run(job)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == EXIT_TOO_MANY_FAILURES, text
    assert "10 of 12 rollouts failed" in text
    assert "malformed x10" in text and "not JSON" in text
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    out = output_of(job)
    assert len(out.rollouts) == 2 and len(out.failures) == 10


@pytest.mark.slow
def test_an_endpoint_answering_only_garbage_is_stopped_before_anything_is_written(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    job = _job(tmp_path, nemo_gym, model_url, 6, set(range(6)))
    done = gymops_run(job)
    text = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 5, text
    assert "preflight" in text and "not JSON" in text and "nothing was written" in text
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


@pytest.mark.slow
def test_a_few_failures_within_the_policy_still_succeed(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    policy = {"maxFailedFraction": 0.1, "minFinished": 10}
    job = _job(tmp_path, nemo_gym, model_url, 12, {5}, failurePolicy=policy)
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "_SUCCESS").exists()
    out = output_of(job)
    assert len(out.rollouts) == 22 and all(r["reward"] == 1.0 for r in out.rollouts)
    assert {f["_ng_task_index"] for f in out.failures} == {5}


@pytest.mark.slow
def test_the_same_failures_over_a_stricter_policy_fail_and_keep_the_rows(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    policy = {"maxFailedFraction": 0.05, "minFinished": 10}
    job = _job(tmp_path, nemo_gym, model_url, 12, {5}, failurePolicy=policy)
    done = gymops_run(job)
    assert done.returncode == EXIT_TOO_MANY_FAILURES, done.stdout + done.stderr
    assert "2 of 24 rollouts failed" in " ".join(done.stdout.split())
    assert not (tmp_path / "out" / "_SUCCESS").exists()
    assert len(output_of(job).rollouts) == 22

"""A verifier that says its reward is not a measurement (judge down) gives failure rows, not 0.0."""

from __future__ import annotations

from pathlib import Path

import pytest
from ngkit import NemoGym, ask, gymops_run, output_of, write_job, write_tasks


@pytest.mark.slow
def test_a_judge_that_is_down_gives_failure_rows_never_zero_rewards(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    right = ask("2 + 2? [say: \\boxed{4}]", question="2 + 2?", expected_answer="4")
    wrong = ask("2 + 3? [say: \\boxed{6}]", question="2 + 3?", expected_answer="5")
    job = write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", [right, wrong]),
        model_url=model_url,
        verifier_url=nemo_gym.urls["math_with_down_judge"],
        failurePolicy={"maxFailedFraction": 0.5},
    )
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    out = output_of(job)
    # math-verify settles the right answer; the wrong one goes to the judge, which is down
    assert sorted(r["_ng_task_index"] for r in out.rollouts) == [0, 0]
    assert all(r["reward"] == 1.0 for r in out.rollouts)
    assert sorted(f["_ng_task_index"] for f in out.failures) == [1, 1]
    for row in out.failures:
        assert row["failure"]["class"] == "verifier_judge_failed"
        assert "reward" not in row
        assert row["failure"]["masked"] is True
        assert "ClientResponseError: 500" in row["failure"]["message"]  # the judge server's answer

"""`gymops run` with the regex verifier, where some tasks' patterns backtrack on the model's
ordinary answer: the run finishes, those rollouts are `verifier_unscorable` failure rows and
the others are scored (the old code matched on local mode's event loop without a limit, and
one answer stalled the whole run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clikit import gymops, output_of, write_job, write_tasks

from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri

BIG = 12345678901234567890123456789012345
"""The stub answers with the sum of the prompt's numbers: 35 digits, twice."""
BACKTRACKS = r"(\d*?\d){25}#"
"""Backtracks on those digits in Python's `re` and in the `regex` package alike."""
CLASSIC = r"^(\w+\s?)*$"
"""Backtracks without end in `re`; the `regex` package answers it (no match) at once."""


def task(prompt: str, pattern: str) -> dict[str, Any]:
    return {"responses_create_params": {"input": prompt}, "pattern": pattern}


def test_a_backtracking_pattern_costs_its_rollouts_not_the_run(stub, tmp_path: Path) -> None:
    _, base_url = stub
    rows = [task(f"What is {i} + {i + 1}?", r"#### \d+$") for i in range(4)]
    rows.insert(1, task(f"What is {BIG} + 0?", BACKTRACKS))
    rows.insert(3, task(f"What is {BIG} + 0?", CLASSIC))
    tasks = write_tasks(tmp_path / "tasks.jsonl", rows)
    out = tmp_path / "out"
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        output=out,
        base_url=base_url,
        verifier={"builtin": "regex"},
        failurePolicy={"maxFailedFraction": 0.5},
    )
    proc = gymops("run", str(job), "--no-progress", timeout=300)
    assert proc.returncode == 0, output_of(proc)
    committed = read_committed(Storage(), parse_uri(str(out)))
    failed = {row["_ng_task_index"] for row in committed.failures}
    assert failed == {1}, committed.failures
    for row in committed.failures:
        assert row["failure"]["class"] == "verifier_unscorable"
        assert "took too long on this answer" in row["failure"]["message"]
    rewards = {
        (r["_ng_task_index"], r["_ng_rollout_index"]): r["reward"] for r in committed.rollouts
    }
    assert len(rewards) == 2 * (len(rows) - 1)
    assert {reward for (index, _), reward in rewards.items() if index != 3} == {1.0}
    assert rewards[(3, 0)] == rewards[(3, 1)] == 0.0

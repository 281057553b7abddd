"""Agent-mode rows are the rows NeMo Gym's own `ng_collect_rollouts` writes for the same tasks,
field by field, compared on a small run of both against the same servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ngkit import NemoGym, ask, gymops_run, ng_collect_rollouts, output_of, write_job, write_tasks

AGENT = "string_match_simple_agent"
TASKS = [
    ask(f"Capital? [say: \\boxed{{{city}}}]", expected_answer="Paris", extraction_mode="boxed")
    for city in ("Paris", "Lyon", "Nice")
]
PER_CALL = {"id", "created_at"}
"""Fields of `response` that differ between any two calls of the same model."""
ROUTING = {"agent_ref", "_ng_environment_server", "_ng_result_type"}
"""What NeMo Gym's collector stamps on a row about how it routed it to the agent through an
environment server; a RolloutJob names its agent by URL."""
PARAMS_DEFAULTS = {"parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
"""What the agent's validation adds to the task's `responses_create_params` (besides nulls)."""


def without_nulls(value: Any) -> Any:
    """The value with every null-valued key removed, recursively."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def by_identity(rows: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
    """Rows by (task index, rollout index)."""
    return {(r["_ng_task_index"], r["_ng_rollout_index"]): r for r in rows}


@pytest.mark.slow
def test_agent_rows_match_ng_collect_rollouts_field_by_field(
    tmp_path: Path, ng_collection: NemoGym, model_url: str
) -> None:
    tasks = write_tasks(tmp_path / "tasks.jsonl", TASKS)
    output = tmp_path / "ng" / "rollouts.jsonl"
    theirs = by_identity(ng_collect_rollouts(ng_collection, tasks, output, AGENT, 2))
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        model_url=model_url,
        verifier_url=ng_collection.urls["string_match"],
        agent={"url": ng_collection.urls[AGENT]},
        parallelism=2,
        sampling={"numRepeats": 2, "concurrency": 2},
    )
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    ours = by_identity(output_of(job).rollouts)

    assert sorted(ours) == sorted(theirs) == [(t, r) for t in range(3) for r in range(2)]
    for identity, their_row in theirs.items():
        our_row = ours[identity]
        task = TASKS[identity[0]]
        for field in set(their_row) - ROUTING - {"responses_create_params", "response"}:
            assert our_row[field] == their_row[field], (identity, field)
        # Every field of ours is one of theirs, or a task field their row leaves out.
        assert set(our_row) - set(their_row) <= set(task), identity
        assert all(our_row[k] == task[k] for k in set(our_row) - set(their_row))
        their_response = {k: v for k, v in their_row["response"].items() if k not in PER_CALL}
        our_response = {k: v for k, v in our_row["response"].items() if k not in PER_CALL}
        assert our_response == their_response, identity
        # Theirs is the agent's validated copy of the task's params; ours is the task's own.
        assert our_row["responses_create_params"] == task["responses_create_params"]
        assert without_nulls(their_row["responses_create_params"]) == {
            **task["responses_create_params"],
            **PARAMS_DEFAULTS,
        }
    assert {r["reward"] for r in theirs.values()} == {0.0, 1.0}

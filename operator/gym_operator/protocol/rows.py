"""The rows a job reads and writes: task row in, rollout row or failure row out.

Task row: NeMo Gym's (`responses_create_params` plus verifier fields). Rollout row: every task
field, the verifier's other answer fields (as NeMo Gym's own rollout rows keep them), `response`,
`reward`, optional `reward_components`, and the identity `_ng_task_index`/`_ng_rollout_index`.
Failure row: the identity and a `failure` object (class, message, attempts), never a reward.
"""

from __future__ import annotations

from typing import Any

TASK_INDEX = "_ng_task_index"
ROLLOUT_INDEX = "_ng_rollout_index"
PARAMS = "responses_create_params"


def rollout_row(
    task_row: dict[str, Any],
    identity: tuple[int, int],
    response: dict[str, Any],
    reward: float,
    components: dict[str, float] | None = None,
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One verified rollout; `extras` are the verifier's answer fields beyond the score."""
    row = dict(task_row)
    for key, value in (extras or {}).items():
        row.setdefault(key, value)
    row["response"] = response
    row["reward"] = reward
    if components:
        row["reward_components"] = components
    row[TASK_INDEX], row[ROLLOUT_INDEX] = identity
    return row


def failure(error_class: str, message: str, attempts: int, **more: Any) -> dict[str, Any]:
    """The `failure` object of a failure row."""
    return {"class": error_class, "message": message[:500], "attempts": attempts, **more}


def failure_row(identity: tuple[int, int], failure_obj: dict[str, Any]) -> dict[str, Any]:
    """One rollout that failed for good (written to the shard's failures file)."""
    task_index, repeat = identity
    return {TASK_INDEX: task_index, ROLLOUT_INDEX: repeat, "failure": failure_obj}

"""A verl custom reward function that scores with the same built-in verifier as the rollouts.

verl rows exported with `data_source: gymops/<verifier>` name a gym-operator built-in verifier.
Point verl at this file:

    reward.custom_reward_function.path=<site-packages>/gym_operator/data/verl_reward.py
    reward.custom_reward_function.name=compute_score
    reward.reward_kwargs.verifier_config={...}     # the RolloutJob's verifier.config, if any

The task's verifier fields travel in `extra_info.task` (JSON text) and the reference answer in
`reward_model.ground_truth`. Rows with another data_source go to verl's own
`default_compute_score`. A response the verifier cannot score gets score 0.0 and
`verifier_error: 1.0`, which verl logs, so it is visible rather than silently a wrong answer.
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "gymops/"


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> float | dict[str, float]:
    """verl's reward signature: a float, or a dict with `score` and logged extras."""
    if not data_source.startswith(PREFIX):
        from verl.utils.reward_score import default_compute_score

        return default_compute_score(data_source, solution_str, ground_truth, extra_info)
    from gym_operator.verify.base import VerifierError, get_verifier

    raw_task = (extra_info or {}).get("task") or "{}"
    task = json.loads(raw_task) if isinstance(raw_task, str) else dict(raw_task)
    task.setdefault("expected_answer", ground_truth)
    check = get_verifier(data_source.removeprefix(PREFIX))
    try:
        result = check(task, solution_str, dict(kwargs.get("verifier_config") or {}))
    except VerifierError:
        return {"score": 0.0, "verifier_error": 1.0}
    return {"score": float(result.reward), **{k: float(v) for k, v in result.components.items()}}

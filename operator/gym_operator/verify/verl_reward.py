"""A verl custom reward function that scores with the same built-in verifier as the rollouts.

verl rows exported with `data_source: gymops/<verifier>` name a gym-operator built-in verifier.
Point verl at this file:

    reward.custom_reward_function.path=<site-packages>/gym_operator/verify/verl_reward.py
    reward.custom_reward_function.name=compute_score
    reward.reward_kwargs.verifier_config={...}     # the RolloutJob's verifier.config, if any

The task's verifier fields travel in `extra_info.task` (JSON text), the reference answer in
`reward_model.ground_truth`, and the RolloutJob's `spec.reward` in `extra_info.reward` (JSON
text): the verifier's score is shaped exactly as the rollouts' were (component weights, gates,
length penalty, binary or continuous; gym_operator/shaping.py). Rows with another data_source go to
verl's own `default_compute_score`. A response the verifier cannot score gets score 0.0 and
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
    score, parts = _shaped(result.reward, result.components, solution_str, extra_info)
    return {"score": score, **{k: float(v) for k, v in parts.items()}}


def _shaped(
    score: float,
    components: dict[str, float],
    solution_str: str,
    extra_info: dict[str, Any] | None,
) -> tuple[float, dict[str, float]]:
    """The score shaped by the RolloutJob's reward spec in `extra_info.reward` (if any)."""
    from gym_operator.api.rolloutjob import RewardSpec
    from gym_operator.shaping import shape_reward

    raw = (extra_info or {}).get("reward") or "{}"
    spec = RewardSpec.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
    return shape_reward(score, components, len(solution_str), spec)

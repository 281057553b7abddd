"""verl's custom reward scores as the RolloutJob did: same verifier, same reward shaping."""

from __future__ import annotations

import json

from gym_operator.verify import verl_reward

TASK = json.dumps({"expected_answer": "4"})


def score(text: str, reward_spec: dict | None) -> dict:
    extra = {"task": TASK}
    if reward_spec is not None:
        extra["reward"] = json.dumps(reward_spec)
    return verl_reward.compute_score("gymops/math", text, "4", extra)


def test_the_jobs_length_penalty_and_mode_apply() -> None:
    long_right = "so \\boxed{4}" + " because" * 30  # 252 characters
    spec = {"mode": "continuous", "lengthPenalty": {"startChars": 12, "maxChars": 252}}
    shaped = score(long_right, spec)
    assert shaped["score"] == 0.5 and shaped["length_penalty"] == 0.5
    assert score(long_right, {"mode": "continuous"})["score"] == 1.0


def test_binary_mode_and_pass_threshold_as_in_the_job() -> None:
    spec = {"mode": "binary", "passThreshold": 0.9, "lengthPenalty": {"maxChars": 100}}
    assert score("\\boxed{4}" + "." * 50, spec)["score"] == 0.0  # 1.0 - 0.295 < 0.9
    assert score("\\boxed{4}", spec)["score"] == 1.0
    assert score("\\boxed{5}", None)["score"] == 0.0

"""Reward shaping per spec.reward: weights, gates, length penalty, binary and continuous."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gym_operator.api.rolloutjob import RewardSpec
from gym_operator.rollout.reward import make_reward_fn
from gym_operator.shaping import shape_reward


def spec(**fields) -> RewardSpec:
    return RewardSpec.model_validate(fields)


def test_binary_uses_the_pass_threshold() -> None:
    assert shape_reward(0.8, None, 10, spec(mode="binary", passThreshold=0.8))[0] == 1.0
    assert shape_reward(0.79, None, 10, spec(mode="binary", passThreshold=0.8))[0] == 0.0


def test_continuous_keeps_the_score() -> None:
    assert shape_reward(0.37, None, 10, spec(mode="continuous"))[0] == pytest.approx(0.37)


def test_weighted_components_replace_the_score() -> None:
    reward, parts = shape_reward(
        0.0,
        {"correct": 1.0, "format": 0.0},
        10,
        spec(mode="continuous", components={"correct": 0.8, "format": 0.2}),
    )
    assert reward == pytest.approx(0.8)
    assert parts == {"correct": 1.0, "format": 0.0}


def test_gate_zeroes_the_reward_unless_the_gate_passes() -> None:
    gated = spec(mode="continuous", gates=["format"])
    assert shape_reward(1.0, {"correct": 1.0, "format": 0.0}, 10, gated) == (
        0.0,
        {"correct": 1.0, "format": 0.0, "gates": 0.0},
    )
    assert shape_reward(1.0, {"correct": 1.0, "format": 1.0}, 10, gated)[0] == 1.0
    # a gate naming a component the verifier did not report fails closed
    assert shape_reward(1.0, {}, 10, gated)[0] == 0.0


def test_length_penalty_is_linear_between_start_and_max() -> None:
    penalised = spec(mode="continuous", lengthPenalty={"startChars": 100, "maxChars": 300})
    assert shape_reward(1.0, None, 100, penalised)[0] == 1.0
    reward, parts = shape_reward(1.0, None, 200, penalised)
    assert reward == pytest.approx(0.75)
    assert parts["length_penalty"] == pytest.approx(0.25)
    assert shape_reward(1.0, None, 10_000, penalised)[0] == pytest.approx(0.5)
    assert shape_reward(0.2, None, 10_000, penalised)[0] == 0.0


def test_length_penalty_then_binary_threshold() -> None:
    strict = spec(mode="binary", passThreshold=0.9, lengthPenalty={"maxChars": 1000, "penalty": 1})
    assert shape_reward(1.0, None, 50, strict)[0] == 1.0
    assert shape_reward(1.0, None, 500, strict)[0] == 0.0


def answer(text: str) -> dict:
    content = [{"type": "output_text", "text": text, "annotations": []}]
    return {"output": [{"type": "message", "role": "assistant", "content": content}]}


def test_the_generator_penalises_by_the_length_of_the_answer_text() -> None:
    penalty = {"startChars": 0, "maxChars": 100, "penalty": 1.0}
    reward = make_reward_fn(spec(mode="continuous", lengthPenalty=penalty))
    assert reward(1.0, None, answer("x" * 50)) == (0.5, {"length_penalty": 0.5})
    assert reward(1.0, None, answer("x" * 500)) == (0.0, {"length_penalty": 1.0})
    assert make_reward_fn(spec(mode="continuous"))(0.7, None, answer("x" * 500)) == (0.7, None)


def test_length_penalty_bounds_are_validated() -> None:
    with pytest.raises(ValidationError, match="maxChars"):
        spec(lengthPenalty={"startChars": 50, "maxChars": 50})
    with pytest.raises(ValidationError):
        spec(lengthPenalty={"maxChars": 50, "penalty": 2})

"""From the verifier's score to the stored reward: the job's reward shaping per rollout.

The shaping itself (component weights, gates, length penalty, binary or continuous) is
`gym_operator.shaping`, shared with the verl reward function; this module hands it the score,
the components and, when a length penalty is configured, the length of the response text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gym_operator.api.rolloutjob import RewardSpec
from gym_operator.protocol.response import response_text
from gym_operator.shaping import shape_reward

Components = dict[str, float] | None
RewardFn = Callable[[float, Components, dict[str, Any]], tuple[float, Components]]


def make_reward_fn(spec: RewardSpec) -> RewardFn:
    """A function (score, components, response) -> (reward, components) for this job."""
    needs_length = spec.length_penalty is not None

    def reward(
        score: float, components: Components, response: dict[str, Any]
    ) -> tuple[float, Components]:
        length = len(response_text(response)) if needs_length else None
        value, parts = shape_reward(score, components, length, spec)
        return value, parts or None

    return reward

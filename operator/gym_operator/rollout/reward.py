"""From the verifier's score to the stored reward: binary or continuous, optional component weights.

Richer shaping belongs to `gym_operator.verify.shaping`; when that module defines
`apply_reward(reward_spec, score, components) -> (reward, components)`, it is used instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from gym_operator.api.rolloutjob import RewardSpec

Shaper = Callable[
    [RewardSpec, float, dict[str, float] | None], tuple[float, dict[str, float] | None]
]


def _external_shaper() -> Shaper | None:
    try:
        module = importlib.import_module("gym_operator.verify.shaping")
    except ImportError:
        return None
    shaper: Shaper | None = getattr(module, "apply_reward", None)
    return shaper


def apply_reward(
    spec: RewardSpec, score: float, components: dict[str, float] | None
) -> tuple[float, dict[str, float] | None]:
    """The reward to store and the components to keep."""
    if components and spec.components:
        score = sum(w * float(components.get(name, 0.0)) for name, w in spec.components.items())
    if spec.mode == "binary":
        return (1.0 if score >= spec.pass_threshold else 0.0), components
    return float(score), components


def make_reward_fn(spec: RewardSpec) -> Callable[[float, Any], tuple[float, Any]]:
    """A function (score, components) -> (reward, components) for this job."""
    shaper = _external_shaper() or apply_reward
    return lambda score, components: shaper(spec, score, components)

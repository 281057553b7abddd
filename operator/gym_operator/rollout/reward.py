"""From the verifier's score to the stored reward, via `gym_operator.verify.shaping` when present.

Shaping (component weights, gates, length penalty, binary or continuous) is owned by
`verify/shaping.py`; this module hands it the score, the components and the length of the
response text. Without that module, only weights and binary/continuous apply.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from gym_operator.api.rolloutjob import RewardSpec
from gym_operator.protocol.response import response_text

Components = dict[str, float] | None
RewardFn = Callable[[float, Components, dict[str, Any]], tuple[float, Components]]


def basic_shaping(
    score: float, components: Components, length: int | None, spec: RewardSpec
) -> tuple[float, Components]:
    """Component weights, then binary (score >= passThreshold) or continuous."""
    if components and spec.components:
        score = sum(w * float(components.get(name, 0.0)) for name, w in spec.components.items())
    if spec.mode == "binary":
        return (1.0 if score >= spec.pass_threshold else 0.0), components
    return float(score), components


def make_reward_fn(spec: RewardSpec) -> RewardFn:
    """A function (score, components, response) -> (reward, components) for this job."""
    try:
        shape = importlib.import_module("gym_operator.verify.shaping").shape_reward
    except (ImportError, AttributeError):
        shape = basic_shaping
    needs_length = getattr(spec, "length_penalty", None) is not None

    def reward(
        score: float, components: Components, response: dict[str, Any]
    ) -> tuple[float, Components]:
        length = len(response_text(response)) if needs_length else None
        value, parts = shape(score, components, length, spec)
        return value, parts or None

    return reward

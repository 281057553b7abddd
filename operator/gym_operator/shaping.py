"""Reward shaping: from a verifier's score and components to the stored reward (spec.reward).

In order: (1) with `components` weights, the score is the weighted sum of the verifier's
components (a missing component counts 0); (2) every `gates` component must reach
`gateThreshold`, else the score is 0; (3) `lengthPenalty` subtracts
`penalty * clamp((chars - startChars) / (maxChars - startChars), 0, 1)`, floored at 0;
(4) `binary` mode stores 1.0 when the result reaches `passThreshold`, else 0.0; `continuous`
stores it as is. The returned components are the verifier's plus `gates` (1.0/0.0, when gates are
configured) and `length_penalty` (the amount subtracted, when configured).
"""

from __future__ import annotations

from gym_operator.api.rolloutjob import LengthPenaltySpec, RewardSpec


def length_penalty(chars: int, spec: LengthPenaltySpec) -> float:
    """The amount to subtract for a response of `chars` characters."""
    span = spec.max_chars - spec.start_chars
    fraction = min(max((chars - spec.start_chars) / span, 0.0), 1.0)
    return spec.penalty * fraction


def shape_reward(
    result_reward: float,
    components: dict[str, float] | None,
    response_text_len: int | None,
    spec: RewardSpec,
) -> tuple[float, dict[str, float]]:
    """The reward to store and the components to keep, per `spec` (see the module docstring).

    `response_text_len` (characters of the final response text) None skips the length penalty.
    """
    parts = dict(components or {})
    score = float(result_reward)
    if spec.components:
        score = sum(w * float(parts.get(name, 0.0)) for name, w in spec.components.items())
    if spec.gates:
        passed = all(float(parts.get(g, 0.0)) >= spec.gate_threshold for g in spec.gates)
        parts["gates"] = 1.0 if passed else 0.0
        if not passed:
            score = 0.0
    if spec.length_penalty is not None and response_text_len is not None:
        penalty = length_penalty(response_text_len, spec.length_penalty)
        parts["length_penalty"] = penalty
        score = max(score - penalty, 0.0)
    if spec.mode == "binary":
        score = 1.0 if score >= spec.pass_threshold else 0.0
    return score, parts

"""The /verify exchange of a NeMo Gym resource server: the request body and what its answer means.

Request: the task row with `response` added. Answer: the request echoed back with `reward` and
whatever the server measured (`extracted_answer`, `judge_evaluations`, ...). An answer NeMo Gym
marks as not a valid measurement (`mask_sample: true`, or a `_ng_failure_class` such as the
`judge_failed` of its judge failsafe) is a failure, never a reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gym_operator.protocol.response import ProtocolError

ECHOED = frozenset({"response", "responses_create_params", "reward", "reward_components"})
"""Answer fields that are the request echoed or the score itself, not extra measurements."""


@dataclass(frozen=True)
class Verdict:
    """A real score, its components and the server's other fields (kept on the rollout row)."""

    score: float
    components: dict[str, float] | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Masked:
    """The server answered but says its reward is not a measurement (judge down, lost session)."""

    kind: str
    reason: str


def verify_request(task_row: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The /verify body: every task field plus the `response`."""
    body = dict(task_row)
    body["response"] = response
    return body


def read_answer(answer: dict[str, Any], task_row: dict[str, Any]) -> Verdict | Masked:
    """What a /verify answer says; ProtocolError when it holds no usable score."""
    if answer.get("mask_sample") is True or answer.get("_ng_failure_class"):
        kind = answer.get("_ng_failure_class") or answer.get("failure_kind") or "masked"
        reason = answer.get("failure_reason") or answer.get("_ng_failure_judge_error") or ""
        return Masked(str(kind), str(reason)[:500])
    score = answer.get("reward")
    if not _is_number(score):
        raise ProtocolError(f"verifier answered no numeric reward: {score!r}"[:300])
    components = answer.get("reward_components")
    if isinstance(components, dict):
        if not all(_is_number(v) for v in components.values()):
            raise ProtocolError(
                f"verifier answered non-numeric reward_components: {components!r}"[:300]
            )
        components = {str(k): float(v) for k, v in components.items()}
    else:
        components = None
    extras = {
        k: v
        for k, v in answer.items()
        if k not in ECHOED and k not in task_row and not k.startswith("_ng_")
    }
    return Verdict(float(score), components, extras)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

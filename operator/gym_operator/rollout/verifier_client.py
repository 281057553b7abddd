"""Client of a verifier server (NeMo Gym resource-server protocol): POST /verify per rollout.

The body is the task row plus `response`; the answer carries `reward` (and optionally
`reward_components`). A 422 means the verifier cannot score this rollout: final, no retry.
"""

from __future__ import annotations

import math
from typing import Any

import aiohttp

from gym_operator.rollout.client import post_json
from gym_operator.rollout.retry import MALFORMED, UNSCORABLE, RequestError


class VerifierClient:
    """Sends one /verify request per call; raises RequestError with its class on failure."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/verify"

    async def verify(
        self,
        task: dict[str, Any],
        response: dict[str, Any],
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> tuple[float, dict[str, float] | None]:
        """(score, reward_components) of one rollout; `headers` carry a tool session."""
        body = dict(task)
        body["response"] = response
        try:
            answer = await post_json(self.session, self.url, body, timeout, headers)
        except RequestError as exc:
            if exc.status == 422:
                exc.error_class = UNSCORABLE
            raise
        score = answer.get("reward")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise RequestError(MALFORMED, f"verifier answered no numeric reward: {score!r}")
        components = answer.get("reward_components")
        if not isinstance(components, dict):
            return float(score), None
        if not all(_is_number(v) for v in components.values()):
            raise RequestError(
                MALFORMED, f"verifier answered non-numeric reward_components: {components!r}"[:300]
            )
        return float(score), {str(k): float(v) for k, v in components.items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

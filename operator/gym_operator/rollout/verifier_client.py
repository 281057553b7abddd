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
        self.url = base_url.rstrip("/") + "/verify"

    async def verify(
        self, task: dict[str, Any], response: dict[str, Any], timeout: float
    ) -> tuple[float, dict[str, float] | None]:
        """(score, reward_components) of one rollout."""
        body = dict(task)
        body["response"] = response
        try:
            answer = await post_json(self.session, self.url, body, timeout)
        except RequestError as exc:
            if exc.status == 422:
                exc.error_class = UNSCORABLE
            raise
        score = answer.get("reward")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise RequestError(MALFORMED, f"verifier answered no numeric reward: {score!r}")
        components = answer.get("reward_components")
        return float(score), components if isinstance(components, dict) else None

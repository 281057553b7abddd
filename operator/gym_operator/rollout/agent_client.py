"""Client of a NeMo Gym agent server: one `POST /run` per rollout (agent mode).

The body is the task row; the agent seeds its resources server, calls its model (several turns
for multi-step agents) and /verify, and answers the verified row: `response`, `reward` and the
verifier's other fields, read by `gym_operator.protocol.verify` like a /verify answer.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from gym_operator.protocol import verify as protocol
from gym_operator.protocol.failures import FailureClass
from gym_operator.protocol.response import ProtocolError
from gym_operator.rollout.client import post_json
from gym_operator.rollout.retry import RequestError


class AgentClient:
    """Sends one /run request per call; raises RequestError with its class on failure."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.url = base_url.rstrip("/") + "/run"

    async def run(
        self, task: dict[str, Any], params: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], protocol.Verdict | protocol.Masked]:
        """(the rollout's `response`, what the verifier said) of one run."""
        body = {**task, "responses_create_params": params}
        answer = await post_json(self.session, self.url, body, timeout)
        response = answer.get("response")
        if not isinstance(response, dict) or not isinstance(response.get("output"), list):
            raise RequestError(FailureClass.MALFORMED, "agent answered no response object")
        try:
            return response, protocol.read_answer(answer, task)
        except ProtocolError as exc:
            raise RequestError(FailureClass.MALFORMED, str(exc)) from None

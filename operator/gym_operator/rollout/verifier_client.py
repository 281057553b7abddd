"""Client of a verifier server (NeMo Gym resource-server protocol): POST /verify per rollout.

The body and the meaning of the answer are `gym_operator.protocol.verify`'s. A 422 means the
verifier cannot score this rollout: final, no retry. An answer with no usable score is a
malformed answer (retried); an answer the server marks as not a measurement is returned as
`Masked`, which the generator records as a failure row.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from gym_operator.protocol import verify as protocol
from gym_operator.protocol.failures import FailureClass
from gym_operator.protocol.response import ProtocolError
from gym_operator.rollout.client import post_json
from gym_operator.rollout.retry import RequestError


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
    ) -> protocol.Verdict | protocol.Masked:
        """What the verifier says of one rollout; `headers` carry a tool session."""
        body = protocol.verify_request(task, response)
        try:
            answer = await post_json(self.session, self.url, body, timeout, headers)
        except RequestError as exc:
            if exc.status == 422:
                exc.error_class = FailureClass.VERIFIER_UNSCORABLE
            raise
        try:
            return protocol.read_answer(answer, task)
        except ProtocolError as exc:
            raise RequestError(FailureClass.MALFORMED, str(exc)) from None

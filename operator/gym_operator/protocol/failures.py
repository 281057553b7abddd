"""Failure classes: the `failure.class` of a failure row, one enum, the values as on the wire.

A request fails as one of the request classes (`timeout`, `http_5xx`, ...). The same failure met
while verifying is the class's verifier counterpart (`verifier_timeout`); `verifier_unscorable`
(the verifier answered 422) and `verifier_tool` (a tool call failed) only happen there. A masked
verdict (the verifier says its score is not a measurement) is `verifier_<kind>`, kind being the
verifier's own word, so those classes are open-ended and not members here.
"""

from __future__ import annotations

from enum import StrEnum

VERIFIER_PREFIX = "verifier_"


class FailureClass(StrEnum):
    """Why a rollout failed for good (the value is what failure rows and manifests hold)."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    HTTP_5XX = "http_5xx"
    HTTP_429 = "http_429"
    HTTP_4XX = "http_4xx"
    MALFORMED = "malformed"
    TOO_LARGE = "answer_too_large"
    VERIFIER_TIMEOUT = "verifier_timeout"
    VERIFIER_CONNECTION = "verifier_connection"
    VERIFIER_HTTP_5XX = "verifier_http_5xx"
    VERIFIER_HTTP_429 = "verifier_http_429"
    VERIFIER_HTTP_4XX = "verifier_http_4xx"
    VERIFIER_MALFORMED = "verifier_malformed"
    VERIFIER_TOO_LARGE = "verifier_answer_too_large"
    VERIFIER_UNSCORABLE = "verifier_unscorable"
    VERIFIER_TOOL = "verifier_tool"

    @property
    def at_verifier(self) -> bool:
        """Whether the failure happened while verifying."""
        return self in _REQUEST_OF

    @property
    def request(self) -> FailureClass:
        """The request class underneath (`verifier_timeout` -> `timeout`); itself if none."""
        return _REQUEST_OF.get(self, self)

    def verifying(self) -> FailureClass:
        """The same failure met while verifying (`timeout` -> `verifier_timeout`)."""
        return _VERIFIER_OF.get(self, self)


_VERIFIER_OF: dict[FailureClass, FailureClass] = {
    FailureClass.TIMEOUT: FailureClass.VERIFIER_TIMEOUT,
    FailureClass.CONNECTION: FailureClass.VERIFIER_CONNECTION,
    FailureClass.HTTP_5XX: FailureClass.VERIFIER_HTTP_5XX,
    FailureClass.HTTP_429: FailureClass.VERIFIER_HTTP_429,
    FailureClass.HTTP_4XX: FailureClass.VERIFIER_HTTP_4XX,
    FailureClass.MALFORMED: FailureClass.VERIFIER_MALFORMED,
    FailureClass.TOO_LARGE: FailureClass.VERIFIER_TOO_LARGE,
}
_REQUEST_OF: dict[FailureClass, FailureClass] = {
    **{verifier: request for request, verifier in _VERIFIER_OF.items()},
    FailureClass.VERIFIER_UNSCORABLE: FailureClass.VERIFIER_UNSCORABLE,
    FailureClass.VERIFIER_TOOL: FailureClass.VERIFIER_TOOL,
}


def parse(name: object) -> FailureClass | None:
    """The class of a failure row's `class` value; None for a masked verdict's or an unknown one."""
    try:
        return FailureClass(str(name))
    except ValueError:
        return None


def masked(kind: str) -> str:
    """The class of a masked verdict of `kind` (`judge_failed` -> `verifier_judge_failed`)."""
    return VERIFIER_PREFIX + kind

"""Property-based fuzzing of the verifier server's HTTP surface (Hypothesis), bounded in time.

Whatever the body (any JSON value, Responses-API look-alikes of every wrong type, model text
built from bait fragments, raw bytes), the real server answers 200 with a reward in [0, 1] or a
4xx with an error naming the problem: never a 5xx, never a worker crash or a recycled pool, and
`/health` answers after every example. Each test runs a fixed number of examples
(about 20 s on a busy machine); `deadline=None` because one slow example on a loaded machine is
not a bug, the per-request timeout below is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gym_operator.testing.loopback import run_in_thread
from gym_operator.verify.server import VerifierSettings, start_server

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REQUEST_SECONDS = 30
BAIT = ["<think>", "</think>", "\\boxed{", "\\fbox{", "{", "}", "####", "\\text{", "\\frac{"]
BAIT += [" ", "\n", "4", "2+2", "Answer: A", "(b)", "```json\n", "```", "[", "]", "<<", ">>"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
repeated = st.builds(
    lambda piece, times: piece * times, st.sampled_from(BAIT), st.integers(1, 30_000)
)
model_text = st.lists(st.sampled_from(BAIT) | st.text(max_size=8) | repeated, max_size=40).map(
    "".join
)
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["output_text", "text", "refusal"]) | json_values},
    optional={"text": model_text | json_values},
)
items = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "reasoning", "function_call"]) | json_values},
    optional={
        "role": st.sampled_from(["assistant", "user"]) | json_values,
        "content": st.lists(parts | json_values, max_size=3) | json_values,
    },
)
responses = st.fixed_dictionaries(
    {}, optional={"output": st.lists(items, max_size=3) | json_values}
)
bodies = st.fixed_dictionaries(
    {"response": responses | json_values},
    optional={
        "expected_answer": st.sampled_from(["4", "1/2", "\\frac{1}{2}", "A"]) | json_values,
        "options": json_values,
        "responses_create_params": json_values,
    },
)


@pytest.fixture(scope="module", params=["math", "mcqa"])
def server(request: pytest.FixtureRequest) -> Iterator[str]:
    """The real verifier server for one built-in, one pool worker, on loopback."""
    options = VerifierSettings(builtin=request.param, workers=1, timeout_seconds=20)
    with run_in_thread(lambda: start_server(options)) as url:
        yield url


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def check_answer(answer: requests.Response) -> None:
    """The answer is 200 with a reward in [0, 1], or a 4xx JSON error; nothing else."""
    assert answer.status_code in (200, 400, 413, 422), (answer.status_code, answer.text[:300])
    body = answer.json()
    if answer.status_code == 200:
        assert isinstance(body["reward"], float) and 0.0 <= body["reward"] <= 1.0
    else:
        assert isinstance(body["error"], str) and body["error"]


def restarts(http: requests.Session, url: str) -> int:
    health = http.get(f"{url}/health", timeout=REQUEST_SECONDS)
    assert health.status_code == 200
    return int(health.json()["pool_restarts"])


def test_verify_answers_any_structured_body(server: str, http: requests.Session) -> None:
    before = restarts(http, server)

    @FUZZ
    @given(body=bodies)
    def fuzz(body: dict[str, Any]) -> None:
        check_answer(http.post(f"{server}/verify", json=body, timeout=REQUEST_SECONDS))

    fuzz()
    assert restarts(http, server) == before


def test_verify_answers_any_json_or_bytes(server: str, http: requests.Session) -> None:
    before = restarts(http, server)

    @FUZZ
    @given(raw=json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300))
    def fuzz(raw: bytes) -> None:
        check_answer(http.post(f"{server}/verify", data=raw, timeout=REQUEST_SECONDS))

    fuzz()
    assert restarts(http, server) == before


REFERENCES = {"math": ["4", "\\frac{1}{2}", "1,000"], "mcqa": ["A", "B", "(c)"]}


def test_verify_scores_any_model_text(server: str, http: requests.Session) -> None:
    """A valid task and any model text: always scored (200), never a failure row."""
    before = restarts(http, server)

    @FUZZ
    @given(text=model_text, answer=st.sampled_from(REFERENCES[server_builtin(http, server)]))
    def fuzz(text: str, answer: str) -> None:
        content = [{"type": "output_text", "text": text}]
        body = {
            "expected_answer": answer,
            "response": {"output": [{"type": "message", "content": content}]},
        }
        answer_ = http.post(f"{server}/verify", json=body, timeout=REQUEST_SECONDS)
        assert answer_.status_code == 200, answer_.text[:300]
        check_answer(answer_)

    fuzz()
    assert restarts(http, server) == before


def test_session_and_tool_endpoints_answer_any_body(server: str, http: requests.Session) -> None:
    before = restarts(http, server)
    endpoints = ["seed_session"] + (
        ["calculator"] if server_builtin(http, server) == "math" else []
    )

    @FUZZ
    @given(
        endpoint=st.sampled_from(endpoints),
        body=json_values | st.fixed_dictionaries({"expression": st.text(max_size=60) | model_text}),
    )
    def fuzz(endpoint: str, body: Any) -> None:
        answer = http.post(f"{server}/{endpoint}", json=body, timeout=REQUEST_SECONDS)
        assert answer.status_code in (200, 400, 422), (answer.status_code, answer.text[:300])
        assert isinstance(answer.json(), dict)

    fuzz()
    assert restarts(http, server) == before


def server_builtin(http: requests.Session, url: str) -> str:
    return str(http.get(f"{url}/health", timeout=REQUEST_SECONDS).json()["verifier"])

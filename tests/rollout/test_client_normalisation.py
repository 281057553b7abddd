"""Both model APIs come back as the same NeMo Gym `response` object."""

from __future__ import annotations

from gym_operator.protocol.response import is_truncated
from gym_operator.rollout.client import ModelClient, chat_request, make_session, merge_params
from gym_operator.testing.stub_model import StubModel
from gym_operator.verify.base import response_text

PARAMS = {
    "input": [{"role": "user", "content": "What is 2 + 3?"}],
    "instructions": "Answer briefly.",
    "max_output_tokens": 64,
    "temperature": 0.3,
}


def test_chat_request_translates_responses_params() -> None:
    body = chat_request(merge_params(PARAMS, {"top_p": 0.9, "temperature": None}), "m")
    assert body["max_tokens"] == 64
    assert "max_output_tokens" not in body and "input" not in body
    assert body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    assert body["temperature"] == 0.3 and body["top_p"] == 0.9


async def _create(url: str, api: str, params: dict) -> dict:
    async with make_session(4) as session:
        client = ModelClient(session, url, "stub", api, api_key="sk-secret")
        return await client.create(client.request_body(params), timeout=5)


async def test_chat_and_responses_give_the_same_shape(stub: tuple[StubModel, str]) -> None:
    _, url = stub
    for api in ("chat", "responses"):
        response = await _create(url, api, {**PARAMS, "seed": 0})
        assert response["object"] == "response"
        assert response["status"] == "completed"
        assert response_text(response).endswith("#### 5")
        assert response["output"][0]["type"] == "message"
        assert response["output"][0]["content"][0]["type"] == "output_text"
        assert response["usage"]["input_tokens"] > 0 and response["usage"]["output_tokens"] > 0
        assert not is_truncated(response)


async def test_finish_reason_length_is_an_incomplete_response(stub: tuple[StubModel, str]) -> None:
    _, url = stub
    for api in ("chat", "responses"):
        params = {"input": "What is 2 + 3? #length"}
        response = await _create(url, api, params)
        assert response["status"] == "incomplete"
        assert response["incomplete_details"] == {"reason": "max_output_tokens"}
        assert is_truncated(response)


def test_client_repr_hides_the_key() -> None:
    client = ModelClient(None, "http://127.0.0.1:1/v1", "m", "chat", api_key="sk-secret")  # type: ignore[arg-type]
    assert "sk-secret" not in repr(client)

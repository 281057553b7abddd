"""llm_judge against a stub OpenAI-compatible judge on loopback: orderings, failures, the key."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from verifykit import post_verify

from gym_operator.testing.loopback import start_app

API_KEY = "judge-key-that-must-never-leak"


class StubJudge:
    """A chat-completions endpoint whose verdicts follow `behaviour`."""

    def __init__(self) -> None:
        self.behaviour = "fair"
        self.prompts: list[str] = []
        self.auth: list[str | None] = []
        self.unblock = asyncio.Event()
        """A `slow` judge answers only once this is set (it never beats a timeout by luck)."""

    def verdict(self, prompt: str) -> str:
        first = re.search(r"Answer A:\n(.*?)\n\nAnswer B:", prompt, re.DOTALL)
        second = re.search(r"Answer B:\n(.*?)\n\nDo answers", prompt, re.DOTALL)
        if self.behaviour == "garbage":
            return "I cannot decide."
        if self.behaviour == "score":
            return "Decent answer. [[7]]"
        if self.behaviour == "first-position-wins":
            # biased: believes whatever sits in position A is the reference's equal.
            return "[[A=B]]" if "Paris" in first.group(1) else "[[A!=B]]"
        same = (
            re.sub(r"\W", "", first.group(1)).lower() == re.sub(r"\W", "", second.group(1)).lower()
        )
        return "Thinking... [[A=B]]" if same else "Thinking... [[A!=B]]"

    async def handle(self, request: web.Request) -> web.Response:
        self.auth.append(request.headers.get("Authorization"))
        if self.behaviour == "error":
            return web.json_response({"error": "overloaded"}, status=500)
        if self.behaviour == "slow":
            await self.unblock.wait()
        body = await request.json()
        prompt = body["messages"][0]["content"]
        self.prompts.append(prompt)
        content = self.verdict(prompt)
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": content}}]}
        )


@pytest.fixture
async def judge() -> AsyncIterator[tuple[StubJudge, str]]:
    stub = StubJudge()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", stub.handle)
    runner, url = await start_app(app)
    yield stub, f"{url}/v1"
    await runner.cleanup()


@pytest.fixture
async def judge_server(verifier_server, judge, monkeypatch):
    async def start(**config: Any) -> str:
        monkeypatch.setenv("MY_JUDGE_KEY", API_KEY)
        base = {"baseURL": judge[1], "model": "judge", "apiKeyEnv": "MY_JUDGE_KEY"}
        return await verifier_server("llm_judge", workers=1, config={**base, **config})

    return start


TASK = {
    "responses_create_params": {"input": [{"role": "user", "content": "Capital of France?"}]},
    "expected_answer": "Paris",
}


async def test_equivalent_answer_asks_both_orderings(judge, judge_server, http) -> None:
    stub, _ = judge
    url = await judge_server()
    status, answer = await post_verify(http, url, TASK, "paris")
    assert (status, answer["reward"]) == (200, 1.0)
    assert answer["reward_components"] == {"equal": 1.0, "consistent": 1.0}
    assert len(stub.prompts) == 2
    assert "Answer A:\nParis" in stub.prompts[0] and "Answer A:\nparis" in stub.prompts[1]
    assert all("Capital of France?" in p for p in stub.prompts)
    assert stub.auth == [f"Bearer {API_KEY}"] * 2


async def test_wrong_answer_scores_zero(judge_server, http) -> None:
    url = await judge_server()
    status, answer = await post_verify(http, url, TASK, "Lyon")
    assert (status, answer["reward"]) == (200, 0.0)
    assert answer["reward_components"]["consistent"] == 1.0


async def test_position_bias_is_detected_and_not_rewarded(judge, judge_server, http) -> None:
    judge[0].behaviour = "first-position-wins"
    url = await judge_server()
    status, answer = await post_verify(http, url, TASK, "Lyon")
    assert (status, answer["reward"]) == (200, 0.0)
    assert answer["reward_components"] == {"equal": 0.0, "consistent": 0.0}


async def test_single_ordering_when_configured(judge, judge_server, http) -> None:
    url = await judge_server(bothOrderings=False)
    status, answer = await post_verify(http, url, TASK, "Paris")
    assert (status, answer["reward"], len(judge[0].prompts)) == (200, 1.0, 1)


async def test_score_mode_scales_the_rating(judge, judge_server, http) -> None:
    judge[0].behaviour = "score"
    url = await judge_server(mode="score")
    status, answer = await post_verify(http, url, TASK, "Paris, I think")
    assert (status, answer["reward"]) == (200, 0.7)


@pytest.mark.parametrize("behaviour", ["error", "garbage"])
async def test_judge_failure_is_a_failure_row_never_a_reward(
    judge, judge_server, http, caplog, behaviour
) -> None:
    judge[0].behaviour = behaviour
    url = await judge_server()
    with caplog.at_level(logging.DEBUG):
        status, answer = await post_verify(http, url, TASK, "Paris")
    assert status == 422 and "reward" not in answer
    assert "judge" in answer["error"]
    assert API_KEY not in answer["error"] and API_KEY not in caplog.text


async def test_unreachable_judge_is_a_failure_row(verifier_server, http) -> None:
    url = await verifier_server(
        "llm_judge", workers=1, config={"baseURL": "http://127.0.0.1:9/v1", "model": "judge"}
    )
    status, answer = await post_verify(http, url, TASK, "Paris")
    assert status == 422 and "judge call failed" in answer["error"]


async def test_bad_prompt_template_is_a_failure_row(judge_server, http) -> None:
    url = await judge_server(promptTemplate="Compare {first} with {answer_b}")
    status, answer = await post_verify(http, url, TASK, "Paris")
    assert status == 422 and "promptTemplate" in answer["error"]
    assert "first" in answer["error"]


async def test_a_slow_judge_hits_the_request_timeout_not_a_reward(
    judge, verifier_server, http
) -> None:
    judge[0].behaviour = "slow"
    config = {"baseURL": judge[1], "model": "judge"}
    url = await verifier_server("llm_judge", workers=1, timeout_seconds=5, config=config)
    status, answer = await post_verify(http, url, TASK, "Paris")
    assert status == 504 and "reward" not in answer
    judge[0].behaviour = "fair"
    judge[0].unblock.set()
    status, answer = await post_verify(http, url, TASK, "Paris")
    assert (status, answer["reward"]) == (200, 1.0)

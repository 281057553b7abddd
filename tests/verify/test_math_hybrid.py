"""The math verifier's hybrid mode against the stub model as judge on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from verifykit import post_verify

from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

LABELLED = Path(__file__).parent / "data" / "math_labelled.jsonl"
TASK = {
    "expected_answer": "4",
    "responses_create_params": {"input": [{"role": "user", "content": "What is 2 + 2?"}]},
}


@pytest.fixture
def judge() -> Iterator[tuple[StubModel, str]]:
    model = StubModel(StubConfig())
    with serve_in_thread(model) as url:
        yield model, url


def hybrid(url: str, **judge: object) -> dict:
    return {"judge": {"baseURL": url, "model": "stub-judge", **judge}}


async def test_the_judge_is_asked_only_when_the_rules_say_no(verifier_server, http, judge) -> None:
    stub, url = judge
    server = await verifier_server("math", config=hybrid(url))
    status, answer = await post_verify(http, server, TASK, "\\boxed{4}")
    assert (status, answer["reward"], stub.requests) == (200, 1.0, 0)
    assert answer["reward_components"] == {
        "correct": 1.0,
        "format": 1.0,
        "rule": 1.0,
        "judge_asked": 0.0,
    }
    # the rules cannot read "4 <- result"; the judge (both orderings) says it is 4.
    status, answer = await post_verify(http, server, TASK, "4 <- result")
    assert (status, answer["reward"], stub.requests) == (200, 1.0, 2)
    components = answer["reward_components"]
    assert (components["rule"], components["judge_asked"], components["judge_equal"]) == (0, 1, 1)
    assert answer["verifier_details"]["judge"] == "equal"
    status, answer = await post_verify(http, server, TASK, "\\boxed{5}")
    assert (status, answer["reward"], stub.requests) == (200, 0.0, 4)
    assert answer["reward_components"]["judge_asked"] == 1.0


async def test_the_rules_alone_are_unchanged_without_a_judge(verifier_server, http) -> None:
    server = await verifier_server("math")
    status, answer = await post_verify(http, server, TASK, "4 <- result")
    assert (status, answer["reward"]) == (200, 0.0)
    assert "judge_asked" not in answer["reward_components"]


@pytest.mark.parametrize(
    ("stub_config", "judge_config", "reason"),
    [
        (StubConfig(rate_500=1.0), {}, "HTTP 500"),
        (StubConfig(latency=5.0), {"timeoutSeconds": 0.5}, "TimeoutError"),
    ],
)
async def test_a_failing_judge_is_a_failure_row_never_a_reward(
    verifier_server, http, stub_config, judge_config, reason
) -> None:
    with serve_in_thread(StubModel(stub_config)) as url:
        server = await verifier_server("math", config=hybrid(url, **judge_config))
        status, answer = await post_verify(http, server, TASK, "4 <- result")
    assert status == 422 and "reward" not in answer
    assert "hybrid judge failed" in answer["error"] and reason in answer["error"]


async def test_the_budget_bounds_the_judge_calls(verifier_server, http, judge) -> None:
    stub, url = judge
    server = await verifier_server("math", config=hybrid(url, maxCalls=3))
    status, first = await post_verify(http, server, TASK, "4 <- result")
    assert (status, first["reward"], stub.requests) == (200, 1.0, 2)
    status, second = await post_verify(http, server, TASK, "4 <- result")
    assert (status, second["reward"], stub.requests) == (200, 0.0, 2)
    assert second["reward_components"]["judge_asked"] == 0.0
    assert "maxCalls (3) spent" in second["verifier_details"]["judge"]


async def test_a_bad_judge_config_is_a_failure_row(verifier_server, http) -> None:
    server = await verifier_server("math", config={"judge": {"model": "x"}})
    status, answer = await post_verify(http, server, TASK, "\\boxed{4}")
    assert status == 422 and "config.judge needs baseURL" in answer["error"]


@pytest.mark.slow
def test_hybrid_figures_on_the_labelled_set(tmp_path: Path, judge) -> None:
    stub, url = judge
    out = tmp_path / "hybrid.json"
    config = json.dumps(hybrid(url))
    done = subprocess.run(
        [sys.executable, "-m", "gym_operator.cli", "--log-level", "WARNING", "verifier-eval"]
        + [str(LABELLED), "--verifier", "math", "--config", config, "--json", str(out)]
        + ["--workers", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    overall = json.loads(out.read_text())["overall"]
    # the judge is asked about exactly the rows the rules reject (both orderings each), and
    # the crude stub judge (same numbers on the last line) costs false positives, not misses.
    assert overall["failed"] == 0 and overall["tpr"] == 1.0
    assert overall["judge_asked"] == 234 and stub.requests == 2 * 234
    assert overall["agreement"] >= 0.94 and overall["fpr"] <= 0.12

"""The verifier server's protocol: answers, bad bodies, size limit, health, metrics, crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import pytest
from verifykit import make_response, post_verify


async def test_verify_answers_the_body_plus_reward(verifier_server, http) -> None:
    url = await verifier_server("math")
    task = {"expected_answer": "1/2", "id": "t1", "responses_create_params": {"input": "q"}}
    status, answer = await post_verify(http, url, task, "so \\boxed{0.5}")
    assert status == 200
    assert answer["reward"] == 1.0
    assert answer["reward_components"] == {"correct": 1.0, "format": 1.0}
    assert answer["id"] == "t1" and answer["responses_create_params"] == {"input": "q"}
    assert answer["response"]["output"][0]["content"][0]["text"] == "so \\boxed{0.5}"


async def test_unscorable_task_is_422_with_the_reason(verifier_server, http) -> None:
    url = await verifier_server("math")
    status, answer = await post_verify(http, url, {"question": "no answer field"}, "\\boxed{1}")
    assert status == 422
    assert "expected_answer" in answer["error"]
    assert "reward" not in answer


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"", "empty"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"expected_answer": "1"}', "response"),
        (b'{"expected_answer": "1", "response": "text"}', "response"),
        (b'{"expected_answer": "1", "response": {"output": "text"}}', "response.output"),
        (b'{"expected_answer": "1", "response": {"status": "completed"}}', "missing"),
        (b'{"expected_answer": "1", "response": {"output": [1, 2]}}', "items"),
    ],
)
async def test_garbage_bodies_are_400_naming_the_problem(verifier_server, http, body, named):
    url = await verifier_server("exact_match", workers=1)
    async with http.post(f"{url}/verify", data=body) as resp:
        assert resp.status == 400
        assert named in (await resp.json())["error"]


async def test_body_over_the_limit_is_413(verifier_server, http) -> None:
    url = await verifier_server("exact_match", workers=1, max_body_bytes=64 * 1024)
    big = {"expected_answer": "x", "response": make_response("y" * 100_000)}
    async with http.post(f"{url}/verify", json=big) as resp:
        assert resp.status == 413
        assert "exceeds" in (await resp.json())["error"]
    status, _ = await post_verify(http, url, {"expected_answer": "x"}, "x")
    assert status == 200


async def test_health_and_metrics(verifier_server, http) -> None:
    url = await verifier_server("exact_match", workers=2)
    await post_verify(http, url, {"expected_answer": "x"}, "x")
    async with http.get(f"{url}/health") as resp:
        health = await resp.json()
    assert health["status"] == "ok" and health["workers"] == 2
    async with http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    assert 'gymops_verifier_verifications_total{outcome="scored"}' in text
    assert "gymops_verifier_check_seconds_bucket" in text


async def test_a_killed_worker_answers_503_and_the_server_recovers(verifier_server, http) -> None:
    url = await verifier_server("code_execution", workers=1, timeout_seconds=30)
    task = {"test_cases": [{"input": "", "output": "done"}]}
    slow = "```python\nimport time\ntime.sleep(5)\nprint('done')\n```"
    pending = asyncio.ensure_future(post_verify(http, url, task, slow))
    await _wait_in_flight(http, url)
    [worker] = await _worker_pids(http, url)
    os.kill(worker, signal.SIGKILL)
    status, answer = await pending
    assert status == 503 and "retry" in answer["error"]
    status, answer = await post_verify(http, url, task, "print('done')")
    assert (status, answer["reward"]) == (200, 1.0)
    async with http.get(f"{url}/health") as resp:
        health = await resp.json()
    assert health["pool_restarts"] == 1 and health["worker_pids"] != [worker]


async def _wait_in_flight(http, url, count: int = 1) -> None:
    """Until the server reports `count` /verify requests being scored."""
    for _ in range(200):
        async with http.get(f"{url}/health") as resp:
            if (await resp.json())["in_flight"] >= count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the request never reached the pool")


async def _worker_pids(http, url) -> list[int]:
    async with http.get(f"{url}/health") as resp:
        return (await resp.json())["worker_pids"]


async def test_a_stuck_check_times_out_with_504_and_the_server_keeps_serving(
    verifier_server, http
) -> None:
    url = await verifier_server(
        "code_execution", workers=1, timeout_seconds=2.0, config={"timeoutSeconds": 20}
    )
    task = {"test_cases": [{"input": "", "output": "x"}]}
    status, answer = await post_verify(http, url, task, "import time\ntime.sleep(20)")
    assert status == 504 and "exceeded" in answer["error"]
    status, answer = await post_verify(http, url, task, "print('x')")
    assert (status, answer["reward"]) == (200, 1.0)


async def test_answer_keeps_the_body_and_replaces_an_old_reward(verifier_server, http) -> None:
    url = await verifier_server("exact_match", workers=1)
    body = {
        "expected_answer": "café",
        "reward": 0.0,
        "note": "ünïcode ✓",
        "response": make_response("Café"),
    }
    async with http.post(f"{url}/verify", data=json.dumps(body, ensure_ascii=False).encode()) as r:
        raw = await r.read()
    assert raw.count(b'"reward"') == 1
    assert json.loads(raw) == {**body, "reward": 1.0}
    spaced = b'  {"expected_answer": "a", "response": {"output": []}}  \n'
    async with http.post(f"{url}/verify", data=spaced) as resp:
        assert await resp.json() == {
            "expected_answer": "a",
            "response": {"output": []},
            "reward": 0.0,
        }


def test_sessions_are_bounded_oldest_first() -> None:
    from gym_operator.verify.server import Sessions

    sessions = Sessions(limit=2)
    first, second = sessions.create(), sessions.create()
    sessions.get(first)["tool_calls"] = 1  # touching keeps the first one fresh
    third = sessions.create()
    sessions.get(third)["tool_calls"] = 3
    assert sessions.get(first) == {"tool_calls": 1}
    assert sessions.get(second) == {}
    assert sessions.get(third) == {"tool_calls": 3}


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({}, None),
    ],
)
def test_worker_count_follows_the_container_cpu_limit(tmp_path, files, limit) -> None:
    from gym_operator.verify.settings import available_cpus, cgroup_cpu_limit

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == limit
    assert 1 <= available_cpus() <= (os.cpu_count() or 1)


async def test_a_worker_killed_while_idle_does_not_take_the_server_down(
    verifier_server, http
) -> None:
    url = await verifier_server("exact_match", workers=2)
    before = await _worker_pids(http, url)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    status, _ = await post_verify(http, url, {"expected_answer": "x"}, "x")
    assert status in (200, 503)  # 503 only when the request raced the death notice
    status, answer = await post_verify(http, url, {"expected_answer": "x"}, "x")
    assert (status, answer["reward"]) == (200, 1.0)
    async with http.get(f"{url}/health") as resp:
        health = await resp.json()
    assert health["pool_restarts"] >= 1 and set(health["worker_pids"]).isdisjoint(before)


async def test_batched_answers_go_to_the_right_requests(verifier_server, http) -> None:
    url = await verifier_server("exact_match", workers=2, max_batch=8)
    cases = [(f"answer-{i}", f"answer-{i}" if i % 3 else f"wrong-{i}") for i in range(300)]
    gate = asyncio.Semaphore(60)

    async def one(expected: str, text: str) -> tuple[str, float]:
        async with gate:
            status, answer = await post_verify(http, url, {"expected_answer": expected}, text)
        assert status == 200
        return answer["expected_answer"], answer["reward"]

    results = await asyncio.gather(*(one(e, t) for e, t in cases))
    assert results == [(e, 1.0 if e == t else 0.0) for e, t in cases]


async def test_health_answers_while_every_worker_is_busy(verifier_server, http) -> None:
    url = await verifier_server("code_execution", workers=1, timeout_seconds=30)
    task = {"test_cases": [{"input": "", "output": "done"}]}
    slow = "import time\ntime.sleep(2)\nprint('done')"
    pending = [asyncio.ensure_future(post_verify(http, url, task, slow)) for _ in range(2)]
    await _wait_in_flight(http, url, count=2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with http.get(f"{url}/health") as resp:
        assert resp.status == 200 and (await resp.json())["in_flight"] == 2
    assert loop.time() - started < 0.5
    assert [answer["reward"] for _, answer in await asyncio.gather(*pending)] == [1.0, 1.0]

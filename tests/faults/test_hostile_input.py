"""Hostile input: model text, request bodies, model answers, task files and specs written to hurt.

Each case asserts the safe outcome (bounded time or memory, a typed failure or a 4xx, nothing
leaked) and that the server or generator then serves the next good request. The code sandbox is
tested in tests/verify/test_code_execution_sandbox.py, not here.

Sizes: model-text bait keeps the issue's sizes (168 KB of `<think>`, 12,000 `\\boxed{`), which
is what froze the old code; line-anchored instruction checks use 200,000 newlines (the old
regexes took about 0.5 s at 20,000 and grew with the square). The task file has a 20 MB line
instead of 200 MB and the slow-connection attack 300 connections instead of 500: the old reader
held the whole line (checked as peak memory, which 20 MB shows as well as 200 MB does) and the
old server never closed a slow connection (one is enough to show, 300 exceed its 256
descriptors). Time bounds are generous (a busy machine) but far below what the old code took.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import requests
import yaml
from aiohttp import web
from faultkit import TinyVerifier, app_in_thread, gymops, job_body, task_row, wait_or_dump
from hostilekit import (
    CountingTools,
    ScriptedModel,
    chat_answer,
    serve_app,
    tool_calls_answer,
)
from test_security import readable_text

from gym_operator.api import SpecError, load_resource, parse_resource
from gym_operator.controller.crdgen import openapi_to_jsonschema
from gym_operator.protocol.failures import FailureClass
from gym_operator.rollout import tool_loop
from gym_operator.rollout.client import ModelClient, make_session
from gym_operator.rollout.retry import RequestError
from gym_operator.rollout.tasks import BadRow, Task, count_shard_lines, iter_shard
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import run_in_thread
from gym_operator.verify.base import VerifyResult, get_verifier, strip_reasoning
from gym_operator.verify.server import VerifierSettings, start_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GOOD_MATH = {"expected_answer": "4"}


def verify_body(task: dict[str, Any], text: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text}]
    return {**task, "response": {"output": [{"type": "message", "content": content}]}}


def instructions(kind: str, **params: Any) -> dict[str, Any]:
    return {"instructions": [{"type": kind, **params}]}


def with_output(output: Any) -> bytes:
    return json.dumps({"response": {"output": output}}).encode()


# --- model text: every check over it is linear ------------------------------------------------

BAIT = [
    ("think-tags", "math", GOOD_MATH, "<think>" * 24_000),
    ("unclosed-boxed", "math", GOOD_MATH, "\\boxed{" * 12_000),
    ("gsm8k-markers", "math", GOOD_MATH, "#### " * 50_000),
    (
        "boxed-text-tags",
        "mcqa",
        {"expected_answer": "A", "options": ["x", "y"]},
        "\\boxed{" + "\\text{" * 20_000 + "}",
    ),
    ("sections-lines", "instruction_following", instructions("sections", n=2), "\n" * 200_000),
    ("bullets-lines", "instruction_following", instructions("bullet_count", n=1), "\n" * 200_000),
    ("postscript-lines", "instruction_following", instructions("postscript"), "\n" * 200_000),
    ("json-nesting", "json_schema", {"schema": {"type": "object"}}, "[" * 100_000),
    ("json-fences", "json_schema", {"schema": {"type": "object"}}, "```json\n" * 30_000),
    ("exact-match-words", "exact_match", {"expected_answer": "a"}, "a " * 200_000),
]


@pytest.mark.parametrize(
    ("builtin", "task", "text"), [pytest.param(*case[1:], id=case[0]) for case in BAIT]
)
def test_bait_in_model_text_costs_linear_time_and_scores_zero(
    builtin: str, task: dict[str, Any], text: str
) -> None:
    check = get_verifier(builtin)
    started = time.monotonic()
    result = check(task, strip_reasoning(text), {})  # type: ignore[call-arg]
    assert time.monotonic() - started < 5.0
    assert isinstance(result, VerifyResult) and result.reward == 0.0


def test_think_stripping_of_bait_is_linear_and_keeps_answers() -> None:
    started = time.monotonic()
    for text in ("<think>" * 200_000, "</think>" * 200_000, "<think></think>" * 100_000):
        strip_reasoning(text)
    assert time.monotonic() - started < 5.0
    assert strip_reasoning("<think>2+2</think>The answer is 4") == "The answer is 4"
    assert strip_reasoning("plan</think>4") == "4"
    assert strip_reasoning("4<think>cut off") == "4"


@pytest.fixture(scope="module")
def math_server() -> Iterator[str]:
    """The real verifier server (math, one pool worker) on loopback."""
    settings = VerifierSettings(builtin="math", workers=1, timeout_seconds=60)
    with run_in_thread(lambda: start_server(settings)) as url:
        yield url


def post(url: str, body: bytes | dict[str, Any], timeout: float = 60) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = requests.post(url, data=data, timeout=timeout)
    return answer.status_code, answer.json()


def health(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/health", timeout=60).json()  # type: ignore[no-any-return]


async def test_bait_does_not_stall_the_server(math_server: str) -> None:
    """The bait goes through /verify while /health is polled: the loop never freezes."""
    restarts = health(math_server)["pool_restarts"]
    latencies: list[float] = []

    async def poll(http: aiohttp.ClientSession, done: asyncio.Event) -> None:
        while not done.is_set():
            started = time.monotonic()
            async with http.get(f"{math_server}/health") as resp:
                assert resp.status == 200
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession() as http:
        done = asyncio.Event()
        poller = asyncio.ensure_future(poll(http, done))
        started = time.monotonic()
        for text in ("<think>" * 24_000, "\\boxed{" * 12_000, "x" * 1_000_000 + "<think>"):
            async with http.post(f"{math_server}/verify", json=verify_body(GOOD_MATH, text)) as r:
                assert r.status == 200 and (await r.json())["reward"] == 0.0
        elapsed = time.monotonic() - started
        done.set()
        await poller
        async with http.post(
            f"{math_server}/verify", json=verify_body(GOOD_MATH, "so \\boxed{4}")
        ) as resp:
            assert resp.status == 200 and (await resp.json())["reward"] == 1.0
    assert elapsed < 20.0
    assert latencies and max(latencies) < 5.0
    assert health(math_server)["pool_restarts"] == restarts, "a worker was pinned and recycled"


@pytest.mark.parametrize(
    "expression", ["((9**999)**999)**10", "(9**999*9**999)**999", "9**999**999", "-" * 499 + "1"]
)
def test_calculator_refuses_work_it_cannot_bound(math_server: str, expression: str) -> None:
    started = time.monotonic()
    status, answer = post(f"{math_server}/calculator", {"expression": expression})
    assert time.monotonic() - started < 5.0
    assert status == 200 and ("error" in answer or answer.get("result") == "-1")
    status, answer = post(f"{math_server}/calculator", {"expression": "6*7"})
    assert (status, answer) == (200, {"result": "42"})


BAD_BODIES = [
    ("deep-array", b"[" * 3000 + b"]" * 3000, "nested too deeply"),
    ("deep-object", b'{"a":' * 3000 + b"1" + b"}" * 3000, "nested too deeply"),
    ("content-number", with_output([{"content": 5}]), "output[0].content"),
    ("text-number", with_output([{"content": [{"text": 5}]}]), "content[0].text"),
    ("part-string", with_output([{"content": ["x"]}]), "content[0]"),
    ("output-object", with_output({}), "response.output"),
    ("item-number", with_output([1]), "items must be objects"),
    ("response-list", json.dumps({"response": []}).encode(), "response"),
    ("not-utf8", b"\xff\xfe{}", "not JSON"),
    ("array-body", b"[1, 2]", "JSON object"),
    ("empty", b"  ", "empty"),
    ("nan", b'{"response": NaN', "not JSON"),
]


@pytest.mark.parametrize(
    ("body", "named"), [pytest.param(*case[1:], id=case[0]) for case in BAD_BODIES]
)
def test_malformed_bodies_get_400_naming_the_problem(
    math_server: str, body: bytes, named: str
) -> None:
    status, answer = post(f"{math_server}/verify", body)
    assert status == 400 and named in answer["error"]
    status, answer = post(f"{math_server}/verify", verify_body(GOOD_MATH, "\\boxed{4}"))
    assert status == 200 and answer["reward"] == 1.0


# --- slow connections and temp dirs: a server process with 256 descriptors -------------------


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A math verifier process with RLIMIT_NOFILE 256, 2 s body and 3 s idle timeouts and its own
    TMPDIR; yields (url, its tmp dir, its log)."""
    tmp, log = tmp_path / "tmp", tmp_path / "server.log"
    tmp.mkdir()
    options = {
        "builtin": "math",
        "workers": 1,
        "nofile": 256,
        "body_timeout_seconds": 2.0,
        "idle_timeout_seconds": 3.0,
    }
    env = {**os.environ, "TMPDIR": str(tmp)}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "hostile_verifier.py"), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=sink,
            env=env,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("URL "), log.read_text()[-3000:]
        yield line.split()[1], tmp, log
    finally:
        proc.terminate()
        proc.wait(30)


def slow_connection(port: int, headers_done: bool) -> socket.socket:
    """A connection that sends part of a request, then nothing."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    if headers_done:
        sock.sendall(
            b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
    else:
        sock.sendall(b"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Le")
    return sock


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """Whether the server closes the connection (after any answer) before the deadline."""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        while sock.recv(65536):
            pass
    except (TimeoutError, OSError):
        return False
    return True


@pytest.mark.slow
def test_slow_connections_are_closed_and_good_requests_served(
    small_server: tuple[str, Path, Path],
) -> None:
    url, _, log = small_server
    port = int(url.rsplit(":", 1)[1])
    attackers = [slow_connection(port, headers_done=i % 2 == 0) for i in range(300)]
    try:
        deadline = time.monotonic() + 60
        closed = [closed_by_server(sock, deadline) for sock in attackers]
        assert all(closed), f"{closed.count(False)} slow connections still open after 60 s"
    finally:
        for sock in attackers:
            sock.close()
    status, answer = post(f"{url}/verify", verify_body(GOOD_MATH, "\\boxed{4}"))
    assert status == 200 and answer["reward"] == 1.0
    assert log.stat().st_size < 200_000, "the attack flooded the log"


def test_unscorable_answers_leave_no_temp_dirs(small_server: tuple[str, Path, Path]) -> None:
    url, tmp, _ = small_server
    before = sorted(p.name for p in tmp.iterdir())
    for _ in range(20):
        status, answer = post(f"{url}/verify", verify_body({}, "\\boxed{4}"))
        assert status == 422 and "expected_answer" in answer["error"]
    for body in (b"[" * 5000, b'{"response": 1}'):
        assert post(f"{url}/verify", body)[0] == 400
    assert sorted(p.name for p in tmp.iterdir()) == before
    status, answer = post(f"{url}/verify", verify_body(GOOD_MATH, "\\boxed{4}"))
    assert status == 200 and answer["reward"] == 1.0


# --- the generator: answers, tool calls, task files -----------------------------------------


HUGE_ANSWER = json.dumps(chat_answer("x" * 5_000_000)).encode()  # built before memory is traced


async def endless_or_huge(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
    """`huge`: a 5 MB JSON answer with Content-Length; `endless`: chunks without end;
    anything else: a good answer."""
    if "huge" in prompt:
        return web.Response(body=HUGE_ANSWER, content_type="application/json")
    if "endless" in prompt:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * 65536
        await response.write(b'{"choices": [{"message": {"content": "')
        while True:
            await response.write(chunk)
    return web.json_response(chat_answer("#### 4"))


@pytest.mark.parametrize("prompt", ["huge", "endless"])
async def test_oversized_answers_are_a_typed_failure(prompt: str) -> None:
    limit = 1024 * 1024
    model = ScriptedModel(endless_or_huge)
    runner, url = await serve_app(model.app())
    try:
        async with make_session(4) as session:
            client = ModelClient(session, f"{url}/v1", "m", max_answer_bytes=limit)
            tracemalloc.start()
            started = time.monotonic()
            with pytest.raises(RequestError) as info:
                await client.create(client.request_body({"input": prompt}), timeout=60)
            elapsed = time.monotonic() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert info.value.error_class == FailureClass.TOO_LARGE and not info.value.retryable
            assert elapsed < 30 and peak < 4 * limit + 8 * 1024 * 1024
            good = await client.create(client.request_body({"input": "fine"}), timeout=60)
            assert good["output"][0]["content"][0]["text"] == "#### 4"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize(
    "usage",
    [{"prompt_tokens": -5, "input_tokens": -5}, {"prompt_tokens": "x", "input_tokens": "x"}, [1]]
    + [{"completion_tokens": 2**70, "output_tokens": 2**70}, {"total_tokens": True}],
)
async def test_token_counts_that_are_not_counts_are_malformed(api: str, usage: Any) -> None:
    """Before, such counts reached the token metrics, which raise outside any failure class."""

    async def answer(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
        if api == "responses":
            good = {"output": [], "usage": {"input_tokens": 1}}
            return web.json_response({**good, "usage": usage} if prompt == "bad" else good)
        return web.json_response(
            chat_answer("4", usage=usage) if prompt == "bad" else chat_answer("4")
        )

    runner, url = await serve_app(ScriptedModel(answer).app())
    try:
        async with make_session(2) as session:
            client = ModelClient(session, f"{url}/v1", "m", api=api)
            with pytest.raises(RequestError) as info:
                await client.create(client.request_body({"input": "bad"}), timeout=60)
            assert info.value.error_class == "malformed" and "usage" in info.value.message
            good = await client.create(client.request_body({"input": "good"}), timeout=60)
            counts = [good["usage"][k] for k in ("input_tokens", "output_tokens", "total_tokens")]
            assert all(isinstance(v, int) and v >= 0 for v in counts)
    finally:
        await runner.cleanup()


CALCULATOR_TOOL = {
    "type": "function",
    "name": "calculator",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
}


@pytest.mark.parametrize(
    ("per_turn_asked", "turns", "limits", "expected_calls"),
    [
        pytest.param(10_000, 1, tool_loop.ToolLimits(32, 128), 32, id="10000-in-one-turn"),
        pytest.param(5, 50, tool_loop.ToolLimits(32, 12), 12, id="per-rollout"),
    ],
)
async def test_tool_calls_are_capped(
    per_turn_asked: int, turns: int, limits: tool_loop.ToolLimits, expected_calls: int
) -> None:
    async def answer(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
        return web.json_response(tool_calls_answer(per_turn_asked))

    model, tools = ScriptedModel(answer), CountingTools()
    model_runner, model_url = await serve_app(model.app())
    tools_runner, tools_url = await serve_app(tools.app())
    try:
        async with make_session(4) as session:
            client = ModelClient(session, f"{model_url}/v1", "m")

            async def call_model(params: dict[str, Any]) -> dict[str, Any]:
                return await client.create(client.request_body(params), timeout=60)

            params = {"input": "use the calculator", "tools": [CALCULATOR_TOOL]}
            started = time.monotonic()
            result = await tool_loop.run_tool_loop(
                call_model, session, tools_url, {}, params, turns, limits=limits
            )
            assert time.monotonic() - started < 60
    finally:
        await model_runner.cleanup()
        await tools_runner.cleanup()
    assert tools.calls == expected_calls
    assert result.response["status"] == "incomplete"
    assert result.response["incomplete_details"] == {"reason": "max_tool_calls"}
    outputs = [i for i in result.response["output"] if i["type"] == "function_call_output"]
    assert len(outputs) == expected_calls


async def test_tool_call_arguments_of_any_shape_are_answered_not_raised() -> None:
    """Arguments that are an object, a number or JSON nested too deeply: each call is answered
    with an error the model can read, and the loop goes on to the model's next turn."""
    bad = [{"expression": "1+1"}, 7, "[" * 5000]

    async def answer(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
        if any(m.get("role") == "tool" for m in body["messages"]):
            return web.json_response(chat_answer("#### 2"))
        calls = tool_calls_answer(len(bad))
        for call, arguments in zip(calls["choices"][0]["message"]["tool_calls"], bad, strict=True):
            call["function"]["arguments"] = arguments
        return web.json_response(calls)

    tools = CountingTools()
    model_runner, model_url = await serve_app(ScriptedModel(answer).app())
    tools_runner, tools_url = await serve_app(tools.app())
    try:
        async with make_session(4) as session:
            client = ModelClient(session, f"{model_url}/v1", "m")

            async def call_model(params: dict[str, Any]) -> dict[str, Any]:
                return await client.create(client.request_body(params), timeout=60)

            params = {"input": "use the calculator", "tools": [CALCULATOR_TOOL]}
            result = await tool_loop.run_tool_loop(call_model, session, tools_url, {}, params, 4)
    finally:
        await model_runner.cleanup()
        await tools_runner.cleanup()
    outputs = [
        i["output"] for i in result.response["output"] if i["type"] == "function_call_output"
    ]
    # An object is taken as the arguments it spells (the protocol serialises it); a number and
    # JSON nested too deeply are answered with an error the model can read.
    assert len(outputs) == 3 and json.loads(outputs[0]) == {"result": "2"}, outputs
    assert all("error" in json.loads(o) for o in outputs[1:]), outputs
    assert tools.calls == 1 and result.turns == 2 and result.response["status"] == "completed"


async def test_an_endless_tool_answer_is_cut_not_read_whole() -> None:
    async def answer(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
        if any(m.get("role") == "tool" for m in body["messages"]):
            return web.json_response(chat_answer("#### 2"))
        return web.json_response(tool_calls_answer(1))

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"x" * 65536
        while True:
            await response.write(chunk)

    tools = web.Application()
    tools.router.add_post("/calculator", endless)
    model_runner, model_url = await serve_app(ScriptedModel(answer).app())
    tools_runner, tools_url = await serve_app(tools)
    try:
        async with make_session(4) as session:
            client = ModelClient(session, f"{model_url}/v1", "m")

            async def call_model(params: dict[str, Any]) -> dict[str, Any]:
                return await client.create(client.request_body(params), timeout=60)

            params = {"input": "use the calculator", "tools": [CALCULATOR_TOOL]}
            result = await tool_loop.run_tool_loop(
                call_model, session, tools_url, {}, params, 4, tool_timeout=60
            )
    finally:
        await model_runner.cleanup()
        await tools_runner.cleanup()
    outputs = [
        i["output"] for i in result.response["output"] if i["type"] == "function_call_output"
    ]
    assert [len(o) for o in outputs] == [tool_loop.TOOL_OUTPUT_CHARS]
    assert result.turns == 2 and result.response["status"] == "completed"


def test_a_20mb_line_without_newline_is_one_bad_row_in_bounded_memory(tmp_path: Path) -> None:
    """Scaled from the issue's 200 MB; the old reader held the whole line (>= 20 MB here)."""
    path = tmp_path / "tasks.jsonl"
    good = json.dumps(task_row(0)).encode()
    with path.open("wb") as fh:
        fh.write(good + b"\n" + b'{"x": "' + b"a" * (20 * 1024 * 1024))
    storage, uri = Storage(), parse_uri(str(path))
    tracemalloc.start()
    started = time.monotonic()
    items = list(iter_shard(storage, uri, shard=0, num_shards=1, limit=None, max_row_bytes=65536))
    counts = count_shard_lines(storage, uri, num_shards=1, limit=None)
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 30 and peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert isinstance(items[0], Task) and items[0].index == 0
    assert isinstance(items[1], BadRow) and items[1].index == 1
    assert "above maxRowBytes 65536" in items[1].reason and "20971527 bytes" in items[1].reason
    assert counts == [2]


def test_a_long_line_in_the_middle_spares_the_lines_after_it(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    rows = [json.dumps(task_row(i)).encode() for i in range(2)]
    path.write_bytes(rows[0] + b"\n" + b"b" * (3 * 1024 * 1024) + b"\n" + rows[1] + b"\n")
    items = list(
        iter_shard(Storage(), parse_uri(str(path)), shard=0, num_shards=1, limit=None,
                   max_row_bytes=65536)
    )  # fmt: skip
    assert [type(i).__name__ for i in items] == ["Task", "BadRow", "Task"]
    assert items[2].index == 2 and items[2].row == task_row(1)  # type: ignore[union-attr]


# --- specs: YAML bombs, negative limits ---------------------------------------------------------

BOMB = """apiVersion: gymops.dev/v1alpha1
kind: RolloutJob
metadata: {name: bomb}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
spec: {input: {uri: /tmp/x.jsonl}, bomb: *h}
"""


def test_a_yaml_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 800
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_resource(path)
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "aliases expand the document beyond" in str(info.value)
    assert elapsed < 5 and peak < 20 * 1024 * 1024
    good = ROOT / "manifests" / "examples" / "rolloutjob-rl.yaml"
    assert load_resource(good).kind == "RolloutJob"


@pytest.mark.parametrize(
    "text",
    [
        "a: &s '" + "x" * 20_000 + "'\nb: [" + ",".join(["*s"] * 60) + "]\n",  # long scalars
        "a: &a [1, [*a]]\n",  # recursive
    ],
)
def test_other_alias_abuse_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "job.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_resource(tmp_path / "job.yaml")
    assert "YAML bomb" in str(info.value) or "recursive alias" in str(info.value)


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    body = yaml.safe_load((ROOT / "manifests" / "examples" / "rolloutjob-rl.yaml").read_text())
    body["metadata"] = {"name": "aliases"}
    text = yaml.safe_dump(body).replace(
        "metadata:", "metadata:\n  labels: &l {team: a}\n  annotations: *l", 1
    )
    (tmp_path / "job.yaml").write_text(text)
    job = load_resource(tmp_path / "job.yaml")
    assert job.metadata.labels == job.metadata.annotations == {"team": "a"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("memoryMB", -1), ("timeoutSeconds", -5), ("timeoutSeconds", 0), ("maxProcesses", 0)],
)
def test_negative_limits_are_refused_by_models_and_crd(key: str, value: int) -> None:
    body = yaml.safe_load((ROOT / "manifests" / "examples" / "rolloutjob-rl.yaml").read_text())
    body["spec"]["verifier"]["builtin"] = "code_execution"
    body["spec"]["verifier"]["config"] = {key: value}
    with pytest.raises(SpecError) as info:
        parse_resource(body)
    assert info.value.problems[0].startswith(f"spec.verifier.config.{key}:")
    crd = yaml.safe_load((ROOT / "crds" / "gymops.dev_rolloutjobs.yaml").read_text())
    schema = openapi_to_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(body))
    assert [list(e.absolute_path) for e in errors] == [["spec", "verifier", "config", key]]
    body["spec"]["verifier"]["config"][key] = 64
    assert parse_resource(body).spec.verifier.config[key] == 64


# --- secrets: a model server that echoes the Authorization header --------------------------


def holding(root: Path, secrets: list[str]) -> list[tuple[str, str]]:
    """(file, secret) for every file below `root` holding one of the secrets."""
    return [
        (str(p), s)
        for p in sorted(root.rglob("*"))
        if p.is_file()
        for s in secrets
        if s in readable_text(p)
    ]


async def echoing(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
    """Echo the Authorization header: in the answer text (task 0), in `usage` (task 1), in a 200
    HTML page cut inside the key by the client's excerpt (task 2), in a 401 error (task 3), in
    an answer too large to read (task 4)."""
    auth = request.headers.get("Authorization", "")
    if "Task 0:" in prompt:
        return web.json_response(chat_answer(f"you sent {auth}"))
    if "Task 1:" in prompt:
        usage = {"prompt_tokens": auth, "completion_tokens": 1, "total_tokens": 2}
        return web.json_response(chat_answer("#### 1", usage=usage))
    if "Task 2:" in prompt:
        return web.Response(text=f"<html><p>Authorization: {auth}</p></html>", status=200)
    if "Task 3:" in prompt:
        return web.json_response({"error": {"message": f"bad key: {auth}"}}, status=401)
    if "Task 4:" in prompt:  # above the job's policy.maxAnswerBytes
        return web.json_response(chat_answer(f"{auth} " * 2000))
    return web.json_response(chat_answer("#### 0"))


@contextlib.contextmanager
def scripted_job(
    tmp_path: Path, model: ScriptedModel, tasks: int, policy: dict[str, Any] | None = None
) -> Iterator[str]:
    """`tasks` task rows, `model` and a TinyVerifier on loopback, and a one-repeat RolloutJob
    spec writing to tmp_path/out (logs go to tmp_path/logs); yields the spec's path."""
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text("".join(json.dumps(task_row(i)) + "\n" for i in range(tasks)))
    (tmp_path / "logs").mkdir()
    with (
        run_in_thread(lambda: serve_app(model.app())) as model_url,
        app_in_thread(TinyVerifier().app()) as verifier_url,
    ):
        body = job_body(str(task_file), str(tmp_path / "out"), model_url + "/v1", verifier_url)
        body["spec"]["sampling"]["numRepeats"] = 1
        body["spec"]["policy"].update(policy or {})
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(body))
        yield str(tmp_path / "job.yaml")


def committed_rows(out: Path) -> list[dict[str, Any]]:
    """Every rollout row of the committed parts under `out`."""
    return [
        json.loads(line)
        for part in out.rglob("part-*.jsonl.zst")
        for line in readable_text(part).splitlines()
    ]


@pytest.mark.slow
def test_an_echoed_key_reaches_no_row_failure_log_or_job_record(tmp_path: Path) -> None:
    key = f"sk-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    model = ScriptedModel(echoing)
    out, log = tmp_path / "out", tmp_path / "logs" / "run.log"
    with scripted_job(tmp_path, model, tasks=6, policy={"maxAnswerBytes": 65536}) as spec:
        env = {"FAULTS_API_KEY": key}
        proc = gymops("--log-level", "DEBUG", "generate", "--spec", spec, log=log, env=env)
        assert wait_or_dump(proc, 120, log) == 0, log.read_text()[-3000:]
    assert set(model.authorizations) == {f"Bearer {key}"}, "the key was never sent"
    rows = {row["_ng_task_index"]: row for row in committed_rows(out)}
    failures = {
        json.loads(line)["_ng_task_index"]: json.loads(line)["failure"]
        for part in out.rglob("failures-*.jsonl")
        for line in part.read_text().splitlines()
    }
    assert "[redacted]" in json.dumps(rows[0]["response"]), "task 0's echo was not in the row"
    assert sorted(failures) == [1, 2, 3, 4] and sorted(rows) == [0, 5]
    assert failures[1]["class"] == failures[2]["class"] == "malformed"
    assert failures[4]["class"] == "answer_too_large" and failures[4]["attempts"] == 1
    assert "[redacted]" in failures[2]["message"] and "[redacted]" in failures[3]["message"]
    assert (out / "_job.json").is_file() and (out / "_SUCCESS").is_file()
    assert "DEBUG" in log.read_text()
    assert holding(tmp_path, [key, key[:16], key[-16:]]) == []  # spec, tasks, output and logs


@pytest.mark.slow
def test_a_password_in_the_base_url_reaches_no_artefact(tmp_path: Path) -> None:
    """Userinfo in policy.baseURL: sent as Basic credentials, echoed back in every answer; the
    endpoint is then declared down, so the termination message is written too."""
    password = f"pw-{uuid.uuid4().hex}"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(task_row(i)) + "\n" for i in range(4)))
    out, log = tmp_path / "out", tmp_path / "logs" / "run.log"
    termination = tmp_path / "logs" / "termination-log"
    log.parent.mkdir()
    termination.write_text("")

    async def echo_credentials(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
        auth = request.headers.get("Authorization", "")
        decoded = base64.b64decode(auth.split()[-1]).decode() if auth else ""
        return web.Response(text=f"<html>{auth} {decoded}</html>", status=200)

    model = ScriptedModel(echo_credentials)
    with (
        run_in_thread(lambda: serve_app(model.app())) as model_url,
        app_in_thread(TinyVerifier().app()) as verifier_url,
    ):
        base_url = model_url.replace("http://", f"http://gymops:{password}@") + "/v1"
        body = job_body(str(tasks), str(out), base_url, verifier_url)
        body["spec"]["retry"].update(
            {"maxAttempts": 1, "endpointFailureLimit": 2, "endpointWaitSeconds": 0}
        )
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(body))
        spec = str(tmp_path / "job.yaml")
        proc = gymops(
            "generate", "--spec", spec, "--termination-log", str(termination), log=log, env={}
        )
        assert wait_or_dump(proc, 120, log) == 5, log.read_text()[-3000:]
    assert model.authorizations and all(a.startswith("Basic ") for a in model.authorizations)
    assert termination.read_text().strip(), "no termination message was written"
    record = json.loads((out / "_job.json").read_text())
    assert record["spec"]["policy"]["baseURL"] == model_url + "/v1"
    basic = model.authorizations[0].split()[1]
    assert holding(out, [password, basic]) == [] and holding(log.parent, [password, basic]) == []


async def lone_surrogates(request: web.Request, body: dict[str, Any], prompt: str) -> Any:
    """Answers whose JSON holds a lone surrogate escape (valid JSON, not writable as UTF-8), in
    the text and in a key; a proper surrogate pair (an emoji) stays as it is."""
    answer = chat_answer("#### 0 \ud800 and \U0001f600")
    answer["choices"][0]["message"]["\udc00odd"] = "key"
    return web.Response(body=json.dumps(answer).encode(), content_type="application/json")


@pytest.mark.slow
def test_a_lone_surrogate_in_an_answer_is_replaced_and_the_part_is_written(
    tmp_path: Path,
) -> None:
    out, log = tmp_path / "out", tmp_path / "logs" / "run.log"
    with scripted_job(tmp_path, ScriptedModel(lone_surrogates), tasks=3) as spec:
        proc = gymops("generate", "--spec", spec, log=log)
        assert wait_or_dump(proc, 120, log) == 0, log.read_text()[-3000:]
    rows = committed_rows(out)
    assert len(rows) == 3 and (out / "_SUCCESS").is_file()
    for row in rows:
        assert row["response"]["output"][0]["content"][0]["text"] == "#### 0 \ufffd and \U0001f600"

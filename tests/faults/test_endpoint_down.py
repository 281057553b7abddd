"""A model or verifier endpoint that is down stops the shard (exit code 5) instead of turning
every task into a failure row; the rollouts it failed are sampled again once it is back."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from faultkit import (
    Output,
    TinyVerifier,
    assert_exactly_once,
    gymops,
    job_body,
    read_output,
    serve,
    task_row,
    wait_or_dump,
    write_spec,
    write_tasks,
)

from gym_operator.api import parse_resource
from gym_operator.rollout.breaker import EndpointDown
from gym_operator.rollout.generator import ShardInterrupted
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import free_port
from gym_operator.testing.stub_model import StubModel, start

TASKS, REPEATS, LIMIT, CONCURRENCY = 40, 2, 10, 8
REQUEST_TIMEOUT = 30.0
"""Far above any answer time on a busy machine: every failure here is a refused connection or a
refusing answer, never a slow one."""
API_KEY = "sk-endpoint-down-secret-0123456789"


def spec(
    tmp_path: Path,
    base_url: str,
    ver_url: str,
    rows: list[dict] | None = None,
    wait: float = 0,
    **extra: Any,
) -> dict[str, Any]:
    """A RolloutJob body over TASKS math tasks (or `rows`) with a small endpoint failure limit;
    `wait` is retry.endpointWaitSeconds (0: the shard gives up at its first stop)."""
    tasks = write_tasks(tmp_path / "tasks.jsonl", rows or [task_row(i) for i in range(TASKS)])
    groups: dict[str, Any] = {
        "sampling": {"concurrency": CONCURRENCY},
        "retry": {
            "endpointFailureLimit": LIMIT,
            "endpointWaitSeconds": wait,
            "requestTimeoutSeconds": REQUEST_TIMEOUT,
            "maxRetrySeconds": 2 * REQUEST_TIMEOUT,
        },
        "verifier": {"timeoutSeconds": REQUEST_TIMEOUT},
    }
    for group, values in extra.items():
        groups[group] = {**groups.get(group, {}), **values}
    return job_body(tasks, str(tmp_path / "out"), base_url, ver_url, **groups)


def output(tmp_path: Path) -> Output:
    return read_output(Storage(), parse_uri(str(tmp_path / "out")))


@pytest.mark.parametrize("down", ["model", "verifier"])
async def test_a_dead_endpoint_stops_the_shard_and_the_rerun_loses_nothing(
    tmp_path: Path, down: str
) -> None:
    model_port, verifier_port = free_port(), free_port()
    model_url = f"http://127.0.0.1:{model_port}/v1"
    verifier_url = f"http://127.0.0.1:{verifier_port}"
    body = spec(tmp_path, model_url, verifier_url)
    job = parse_resource(body).spec
    stub, verifier = StubModel(), TinyVerifier()
    running = []
    if down == "verifier":
        running.append((await start(stub, port=model_port))[0])
    else:
        running.append((await serve(verifier.app(), port=verifier_port))[0])
    try:
        with pytest.raises(EndpointDown) as stopped:
            await run_job(job, shards=[0])
        assert "endpoint unavailable" in str(stopped.value)
        assert ("verifier_connection" if down == "verifier" else "connection x") in str(
            stopped.value
        )
        assert output(tmp_path).failures == []

        if down == "verifier":
            running.append((await serve(verifier.app(), port=verifier_port))[0])
        else:
            running.append((await start(stub, port=model_port))[0])
        result = await run_job(job, shards=[0])
    finally:
        for runner in running:
            await runner.cleanup()
    assert result.success
    out = output(tmp_path)
    assert_exactly_once(out, TASKS, REPEATS)
    assert out.failures == []
    assert len(out.rollouts) == TASKS * REPEATS


async def test_failures_between_answers_are_failure_rows_and_never_stop_the_job(
    tmp_path: Path,
) -> None:
    """Blocks of tasks whose every attempt gets a 500, with answers between them: the failures
    are ordinary failure rows, and the breaker never trips however many there are in total.
    (Concurrency 1 runs 2 workers, so one failure of a block may land after the next answer:
    blocks of LIMIT - 2 can make a run of at most LIMIT - 1.)"""
    broken = {t for start in (5, 18, 31) for t in range(start, start + LIMIT - 2)}
    rows = [task_row(i, "#fault:500x99" if i in broken else "") for i in range(TASKS)]
    stub, verifier = StubModel(), TinyVerifier()
    model_runner, model_url = await start(stub)
    ver_runner, ver_url = await serve(verifier.app())
    body = spec(tmp_path, model_url, ver_url, rows, sampling={"numRepeats": 1, "concurrency": 1})
    try:
        result = await run_job(parse_resource(body).spec, shards=[0])
    finally:
        await model_runner.cleanup()
        await ver_runner.cleanup()
    assert result.success
    out = output(tmp_path)
    assert_exactly_once(out, TASKS, 1)
    assert sorted(t for t, _ in out.failure_keys()) == sorted(broken)
    assert {f["failure"]["class"] for f in out.failures} == {"http_5xx"}


async def test_an_endpoint_that_comes_back_is_waited_for_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    """The model server is down when the job starts and comes up a second later (a vLLM
    restart): the shard stops, waits, resumes in the same process, and finishes with every
    slot exactly once. Only the rollouts that failed in the last moments before it came back
    are failure rows: those held when the first answer showed the endpoint works (fewer than
    the limit, or the breaker would have tripped) and those whose last attempt was already
    refused then (at most the window's requests in flight, however slow the machine)."""
    port = free_port()
    verifier, stub = TinyVerifier(), StubModel()
    ver_runner, ver_url = await serve(verifier.app())
    body = spec(tmp_path, f"http://127.0.0.1:{port}/v1", ver_url, wait=30)
    runners = [ver_runner]
    try:
        job = asyncio.create_task(run_job(parse_resource(body).spec, shards=[0]))
        await asyncio.sleep(1.0)
        assert not job.done()
        runners.append((await start(stub, port=port))[0])
        result = await asyncio.wait_for(job, 300)
    finally:
        for runner in runners:
            await runner.cleanup()
    assert result.success
    out = output(tmp_path)
    assert_exactly_once(out, TASKS, REPEATS)
    assert len(out.failures) < LIMIT + CONCURRENCY
    assert {f["failure"]["class"] for f in out.failures} <= {"connection"}
    assert len(out.rollouts) > TASKS * REPEATS - LIMIT - CONCURRENCY


async def test_a_stop_while_waiting_for_the_endpoint_is_a_resumable_stop(tmp_path: Path) -> None:
    ver_runner, ver_url = await serve(TinyVerifier().app())
    body = spec(tmp_path, f"http://127.0.0.1:{free_port()}/v1", ver_url, wait=600)
    stop = asyncio.Event()
    try:
        job = asyncio.create_task(run_job(parse_resource(body).spec, shards=[0], stop=stop))
        await asyncio.sleep(1.0)
        stop.set()  # SIGTERM: the pod is being evicted
        with pytest.raises(ShardInterrupted):
            await asyncio.wait_for(job, 10)
    finally:
        await ver_runner.cleanup()
    assert output(tmp_path).failures == []


def refusing_gateway(status: int) -> web.Application:
    """A model endpoint that answers every request with `status` (a wrong key or model)."""

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "no such key or model"}}, status=status)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", refuse)
    return app


@pytest.mark.parametrize("status", [401, 404])
async def test_a_refusing_endpoint_is_an_endpoint_failure_not_one_failure_per_task(
    tmp_path: Path, status: int
) -> None:
    model_runner, model_url = await serve(refusing_gateway(status))
    ver_runner, ver_url = await serve(TinyVerifier().app())
    body = spec(tmp_path, model_url + "/v1", ver_url)
    try:
        with pytest.raises(EndpointDown, match="http_4xx") as stopped:
            await run_job(parse_resource(body).spec, shards=[0])
        check = "the API key" if status == 401 else "policy.baseURL (OpenAI-compatible"
        assert check in str(stopped.value)
    finally:
        await model_runner.cleanup()
        await ver_runner.cleanup()
    assert output(tmp_path).failures == []


async def test_generate_exits_5_and_says_why_in_the_termination_message(tmp_path: Path) -> None:
    """The pod's view: exit code 5 (the Job retries the pod), the reason in the file Kubernetes
    shows as the container's termination message, and no API key in it."""
    ver_runner, ver_url = await serve(TinyVerifier().app())
    body = spec(tmp_path, f"http://127.0.0.1:{free_port()}/v1", ver_url)
    termination = tmp_path / "termination-log"
    termination.touch()
    log = tmp_path / "generate.log"
    try:
        proc = gymops(
            "generate",
            "--spec",
            write_spec(tmp_path / "job.yaml", body),
            "--termination-log",
            str(termination),
            log=log,
            env={"FAULTS_API_KEY": API_KEY},
        )
        code = await _wait(proc, log)
    finally:
        await ver_runner.cleanup()
    assert code == 5, log.read_text()[-3000:]
    message = termination.read_text()
    assert message.startswith("shard 0: endpoint unavailable: ")
    assert "sampled again when the shard resumes" in message
    assert API_KEY not in message and API_KEY not in log.read_text()


async def test_local_run_exits_5_with_a_message_that_says_what_to_fix(tmp_path: Path) -> None:
    ver_runner, ver_url = await serve(TinyVerifier().app())
    body = spec(tmp_path, f"http://127.0.0.1:{free_port()}/v1", ver_url)
    log = tmp_path / "run.log"
    try:
        proc = gymops("run", "--no-progress", write_spec(tmp_path / "job.yaml", body), log=log)
        code = await _wait(proc, log)
    finally:
        await ver_runner.cleanup()
    text = " ".join(log.read_text().split())
    assert code == 5, text[-3000:]
    # The preflight stops it before any shard starts: nothing to resume, the fix is named.
    assert "preflight" in text and "nothing was written" in text
    assert "Check that policy.baseURL is up" in text


async def _wait(proc: subprocess.Popen[bytes], log: Path) -> int:
    """Wait for the subprocess without blocking this loop (the verifier serves on it)."""
    return await asyncio.to_thread(wait_or_dump, proc, 120, log)

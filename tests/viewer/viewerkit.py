"""Helpers of the viewer tests: a real job's output (stub model, tool calls, failures), a Dataset.

The model is the stub (`gym_operator.testing.stub_model`) behind a loopback front that answers
tasks offering tools itself: first a `calculator` call, then the tool's result as the answer, so
the built-in math verifier serves the tool and scores the trajectory.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from gym_operator.testing.loopback import run_in_thread, start_app


@dataclass(frozen=True)
class Outputs:
    """Where the job wrote its rollouts and the Dataset its files."""

    workdir: Path
    rollouts: Path
    dataset: Path


CALCULATOR = {
    "type": "function",
    "name": "calculator",
    "description": "Evaluate an arithmetic expression.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}},
}
SUM_TASKS = 8
TOOL_TASKS = (8, 9)
FAILING_TASK = 5  # the model answers 400: four http_4xx failure rows
TRUNCATED_TASK = 3  # every answer stops at the token limit
UNSCORABLE_TASK = 6  # no expected answer: verifier_unscorable
BAD_LINE = '{"responses_create_params": '  # line 11 of the input: one bad input row


def tasks() -> list[dict[str, Any]]:
    """Eight sum tasks (one failing, one truncated, one unscorable) and two tool tasks."""
    rows: list[dict[str, Any]] = []
    for i in range(SUM_TASKS):
        extra = {FAILING_TASK: " #fault:400", TRUNCATED_TASK: " #length"}.get(i, "")
        rows.append(
            {
                "responses_create_params": {
                    "instructions": "Answer with '#### <number>' at the end.",
                    "input": [{"role": "user", "content": f"What is {i} + {i + 1}?{extra}"}],
                },
                "expected_answer": str(2 * i + 1),
                "task_type": "sum",
            }
        )
    del rows[UNSCORABLE_TASK]["expected_answer"]
    for i in TOOL_TASKS:
        rows.append(
            {
                "responses_create_params": {
                    "input": [{"role": "user", "content": f"Use the calculator: {i} * 7"}],
                    "tools": [CALCULATOR],
                },
                "expected_answer": str(i * 7),
                "task_type": "calculator",
            }
        )
    return rows


def _tool_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Chat answer for a task with tools: call the calculator, then answer with its result."""
    results = [m for m in body["messages"] if m["role"] == "tool"]
    if results:
        value = json.loads(results[-1]["content"]).get("result", "?")
        message: dict[str, Any] = {
            "role": "assistant",
            "content": f"The tool says {value}.\n#### {value}",
        }
    else:
        prompt = body["messages"][-1]["content"]
        expression = re.sub(r"[^0-9*+ ]", "", prompt.split(":", 1)[1]).strip()
        call = {
            "id": f"call-{body.get('seed', 0)}",
            "type": "function",
            "function": {"name": "calculator", "arguments": json.dumps({"expression": expression})},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
    usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return {
        "id": "tool",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "stub",
        "choices": [choice],
        "usage": usage,
    }


def front_app(stub_url: str, gate: threading.Event | None = None) -> web.Application:
    """Tasks with tools answered here; every other request passed to the stub unchanged.

    With a `gate`, a request whose prompt holds `#wait` is held until the gate is set."""

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        if gate is not None and "#wait" in json.dumps(body["messages"]):
            while not gate.is_set():
                await asyncio.sleep(0.05)
        if body.get("tools"):
            return web.json_response(_tool_answer(body))
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{stub_url}/chat/completions", json=body) as resp:
                return web.Response(
                    body=await resp.read(), status=resp.status, content_type="application/json"
                )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


@contextmanager
def model_front(stub_url: str, gate: threading.Event | None = None) -> Iterator[str]:
    """The front on loopback; yields its /v1 base URL."""

    async def start() -> tuple[web.AppRunner, str]:
        runner, url = await start_app(front_app(stub_url, gate))
        return runner, f"{url}/v1"

    with run_in_thread(start, name="model-front") as url:
        yield url


def write_specs(workdir: Path, base_url: str) -> tuple[Path, Path]:
    """The RolloutJob and the DPO Dataset over its output, as YAML files."""
    tasks_file = workdir / "tasks.jsonl"
    lines = [json.dumps(t) for t in tasks()] + [BAD_LINE]
    tasks_file.write_text("".join(line + "\n" for line in lines))
    out = workdir / "rollouts"
    job = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "RolloutJob",
        "metadata": {"name": "viewer-job"},
        "spec": {
            "input": {"uri": str(tasks_file)},
            "policy": {"baseURL": base_url, "model": "stub"},
            "sampling": {"numRepeats": 4, "concurrency": 8},
            "verifier": {"builtin": "math"},
            "parallelism": 2,
            "output": {"uri": f"file://{out}/", "partRows": 6},
            # The job fails a fifth of its rollouts on purpose, for the viewer to show.
            "failurePolicy": {"maxFailedFraction": 1.0},
            "retry": {
                "maxAttempts": 2,
                "requestTimeoutSeconds": 10,
                "maxRetrySeconds": 20,
                "backoffBaseSeconds": 0.01,
                "backoffMaxSeconds": 0.05,
            },
        },
    }
    dataset = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "viewer-dpo"},
        "spec": {
            "sources": [{"uri": f"file://{out}/"}],
            "kind": "dpo",
            "format": "trl",
            "pairing": {"minQualityDifference": 0.5},
            "split": {"validationFraction": 0.3, "seed": 1},
            "output": {"uri": f"file://{workdir / 'dataset'}/"},
        },
    }
    job_file, ds_file = workdir / "job.yaml", workdir / "dataset.yaml"
    job_file.write_text(yaml.safe_dump(job))
    ds_file.write_text(yaml.safe_dump(dataset))
    return job_file, ds_file


def run_cli(*argv: str) -> None:
    """`gymops ARGV` as a subprocess (the page's browser may own this thread's event loop)."""
    done = subprocess.run(
        [sys.executable, "-m", "gym_operator.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"gymops {' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )


@contextmanager
def viewer(*uris: str, cache_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`gymops view URI... --port 0 --no-browser` as a subprocess; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gym_operator.cli",
            "view",
            *uris,
            "--port",
            "0",
            "--no-browser",
            "--refresh",
            "0.5",
            "--cache-dir",
            str(cache_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        lines = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        assert url, "gymops view printed no URL:\n" + "".join(lines)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)

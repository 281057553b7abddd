"""Helpers shared by the fault tests (import as `faultkit`: pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from gym_operator.rollout import parts
from gym_operator.storage import layout
from gym_operator.storage.manifest import ShardManifest, read_all_manifests
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import StorageURI
from gym_operator.testing.loopback import run_in_thread, start_app
from gym_operator.testing.s3_fault_proxy import S3FaultProxy
from gym_operator.verify.base import response_text


def proxied(proxy: S3FaultProxy, max_attempts: int = 10, read_timeout: float = 5.0) -> Storage:
    """Storage whose S3 endpoint is the fault proxy."""
    return Storage(
        S3Settings(
            endpoint_url=proxy.url,
            region="us-east-1",
            max_attempts=max_attempts,
            connect_timeout=2.0,
            read_timeout=read_timeout,
        )
    )


# --- task files, job specs and reading a job's committed output -------------------------------


def task_row(index: int, directive: str = "") -> dict[str, Any]:
    """A math task the stub model answers right for even seeds and wrong for odd ones."""
    a, b = 1000 + index, 7 * index + 3
    text = f"Task {index}: compute {a} + {b}. {directive}".strip()
    return {
        "id": f"t{index}",
        "responses_create_params": {"input": [{"role": "user", "content": text}]},
        "expected_answer": str(a + b + index),
    }


def prompt_of(row: dict[str, Any]) -> str:
    """The prompt text the stub sees (its counters are keyed by it)."""
    return str(row["responses_create_params"]["input"][0]["content"])


def write_tasks(path: Path, rows: list[dict[str, Any]]) -> str:
    """Write task rows as JSONL; returns the path as a string."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def job_body(
    input_uri: str, output_uri: str, base_url: str, verifier_url: str, **spec: Any
) -> dict:
    """A RolloutJob body with fast retry settings; keyword groups override (merged one level)."""
    body: dict[str, Any] = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "RolloutJob",
        "metadata": {"name": "faults"},
        "spec": {
            "input": {"uri": input_uri},
            "policy": {"baseURL": base_url, "model": "stub", "apiKeyEnv": "FAULTS_API_KEY"},
            "sampling": {"numRepeats": 2, "concurrency": 8},
            # timeouts far above any answer time on a busy machine: a test that wants one to
            # fire sets its own, with a fault that outlasts it
            "verifier": {"url": verifier_url, "timeoutSeconds": 30, "maxAttempts": 3},
            "output": {"uri": output_uri, "partRows": 10, "partSeconds": 0.5},
            "retry": {
                "maxAttempts": 3,
                "requestTimeoutSeconds": 30,
                "maxRetrySeconds": 60,
                "backoffBaseSeconds": 0.01,
                "backoffMaxSeconds": 0.05,
            },
            # These jobs fail on purpose and count the rows; tests/nemogym tests the policy.
            "failurePolicy": {"maxFailedFraction": 1.0},
        },
    }
    for group, values in spec.items():
        current = body["spec"].get(group)
        body["spec"][group] = {**current, **values} if isinstance(current, dict) else values
    return body


def write_spec(path: Path, body: dict[str, Any]) -> str:
    """Write a spec as YAML; returns the path."""
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return str(path)


@dataclass
class Output:
    """Everything committed under an output prefix, read through the manifests only."""

    manifests: list[ShardManifest]
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def rollout_keys(self) -> list[tuple[int, int]]:
        return [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in self.rollouts]

    def failure_keys(self) -> list[tuple[int, int]]:
        return [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in self.failures]

    def all_keys(self) -> list[tuple[int, int]]:
        return self.rollout_keys() + self.failure_keys()


def read_output(storage: Storage, prefix: StorageURI) -> Output:
    """Rows of every committed part (rollouts, failures, bad input), and the manifests."""
    out = Output(read_all_manifests(storage, prefix))
    for manifest in out.manifests:
        directory = layout.shard_dir(prefix, manifest.shard)
        for part in manifest.parts:
            if part.rollouts_file:
                data = storage.read_bytes(directory.join(part.rollouts_file))
                rows = parts.read_part_rows(part.rollouts_file, data)
                assert len(rows) == part.rollouts
                out.rollouts += rows
            for name, target, count in (
                (part.failures_file, out.failures, part.failures),
                (part.errors_file, out.errors, part.errors),
            ):
                if name:
                    rows = parts.read_part_rows(name, storage.read_bytes(directory.join(name)))
                    assert len(rows) == count
                    target += rows
    return out


def assert_exactly_once(out: Output, tasks: int, repeats: int) -> None:
    """Every (task, repeat) has one outcome, rollout or failure, and none has two."""
    keys = out.all_keys()
    assert len(keys) == len(set(keys)), "a (task, repeat) was committed twice"
    assert sorted(keys) == [(t, r) for t in range(tasks) for r in range(repeats)]
    assert not set(out.failure_keys()) & set(out.rollout_keys())
    assert sum(m.completed for m in out.manifests) == len(out.rollouts)
    assert sum(m.failed for m in out.manifests) == len(out.failures)


# --- a small verifier server (NeMo Gym protocol) with switchable misbehaviour ------------------


class TinyVerifier:
    """POST /verify: reward 1.0 when the response ends with `#### <expected_answer>`.

    `mode` switches behaviour at run time: ok, garbage (200 with a non-numeric reward),
    html (200 with a non-JSON body), slow (answers after `slow_seconds`), error (500),
    unscorable (422), deep (JSON nested too deeply to decode), bad_components (a
    non-numeric reward component).
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.slow_seconds = 0.0
        self.calls = 0
        self.answered: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/verify", self._verify)
        app.router.add_post("/seed_session", self._seed)
        return app

    async def _seed(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _verify(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.json()
        mode = self.mode
        self.answered[mode] += 1
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        if mode == "garbage":
            return web.json_response({**body, "reward": "very good"})
        if mode == "html":
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if mode == "error":
            return web.json_response({"error": "boom"}, status=500)
        if mode == "bad_components":
            return web.json_response({**body, "reward": 1.0, "reward_components": {"acc": "high"}})
        if mode == "deep":
            return web.Response(body=b"[" * 100_000, content_type="application/json")
        if mode == "unscorable":
            return web.json_response({"error": "no expected_answer I can parse"}, status=422)
        text = response_text(body["response"])
        reward = 1.0 if text.rstrip().endswith(f"#### {body['expected_answer']}") else 0.0
        return web.json_response({**body, "reward": reward})


async def serve(
    app: web.Application, port: int = 0, shutdown_timeout: float = 60.0
) -> tuple[web.AppRunner, str]:
    """Serve an app on 127.0.0.1 (a restarted one on its old port); returns the runner and base
    URL. `shutdown_timeout=0` makes `runner.cleanup()` a crash: requests in flight are cut off."""
    return await start_app(app, port=port, reuse_address=True, shutdown_timeout=shutdown_timeout)


def app_in_thread(app: web.Application) -> AbstractContextManager[str]:
    """Serve an aiohttp app on its own loop in a daemon thread; yields the base URL."""
    return run_in_thread(lambda: serve(app), name="test-app")


def gymops(*args: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `gymops ARGS` (the real console entry point) with output appended to `log`."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "gym_operator.cli", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


def wait_or_dump(proc: subprocess.Popen[bytes], timeout: float, log: Path) -> int:
    """The exit code; on a timeout, SIGABRT (faulthandler dumps every thread's stack into the
    log) and fail with the log's tail, so a hang in CI leaves its stacks behind."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(10)
        raise AssertionError(f"gymops hung for {timeout}s:\n{log.read_text()[-6000:]}") from None

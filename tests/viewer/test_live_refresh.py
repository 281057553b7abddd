"""While a job runs, the overview follows its manifests until `_SUCCESS` appears."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import viewerkit
import yaml
from playwright.sync_api import expect

from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

WAIT = 120_000
QUICK, HELD, REPEATS = 4, 2, 2


def _job(workdir: Path, url: str) -> Path:
    rows = []
    for i in range(QUICK + HELD):
        hold = " #wait" if i >= QUICK else ""
        rows.append(
            {
                "responses_create_params": {"input": f"What is {i} + 1?{hold}"},
                "expected_answer": str(i + 1),
                "task_type": "held" if hold else "quick",
            }
        )
    tasks = workdir / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "input": {"uri": str(tasks)},
        "policy": {"baseURL": url, "model": "stub"},
        "sampling": {"numRepeats": REPEATS, "concurrency": 2},
        "verifier": {"builtin": "math"},
        "output": {"uri": f"file://{workdir / 'out'}/", "partRows": 2, "partSeconds": 0.5},
        "retry": {"maxAttempts": 2, "requestTimeoutSeconds": 300, "maxRetrySeconds": 600},
    }
    body = {"apiVersion": "gymops.dev/v1alpha1", "kind": "RolloutJob", "spec": spec}
    path = workdir / "job.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_overview_refreshes_while_the_job_runs(
    page: Any, tmp_path: Path, screenshots: Path
) -> None:
    gate = threading.Event()
    with serve_in_thread(StubModel(StubConfig())) as stub_url:
        with viewerkit.model_front(stub_url, gate) as url:
            job = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gym_operator.cli",
                    "run",
                    str(_job(tmp_path, url)),
                    "--no-progress",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                out = tmp_path / "out"
                deadline = time.monotonic() + 120
                while not list(out.glob("shard-*/_manifest.json")):
                    assert time.monotonic() < deadline, "the job committed nothing in 120 s"
                    assert job.poll() is None, "the job ended early"
                    time.sleep(0.2)
                with viewerkit.viewer(str(out), cache_dir=tmp_path / "cache") as served:
                    page.goto(served + "#/v/0")
                    status = page.locator("#job-status")
                    expect(status).to_contain_text("Running (no _SUCCESS yet)", timeout=WAIT)
                    rollouts = page.locator('[data-card="rollouts"] .n')
                    expect(rollouts).to_have_text(str(QUICK * REPEATS), timeout=WAIT)
                    assert "_SUCCESS written" not in status.inner_text()
                    page.screenshot(path=str(screenshots / "running.png"), full_page=True)
                    gate.set()
                    expect(status).to_contain_text("_SUCCESS written", timeout=WAIT)
                    expect(rollouts).to_have_text(str((QUICK + HELD) * REPEATS), timeout=WAIT)
                    held = page.locator("#task-types tr", has_text="held")
                    expect(held).to_contain_text(str(HELD * REPEATS))
                assert job.wait(timeout=120) == 0
            finally:
                gate.set()
                if job.poll() is None:
                    job.terminate()
                    job.wait(timeout=30)

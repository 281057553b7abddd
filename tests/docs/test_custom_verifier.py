"""The custom verifier template of docs/custom-verifier.md runs as written and works with
`gymops run` (as `spec.verifier.url`), answering 422 and 400 where the protocol says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import free_port
from gym_operator.testing.stub_model import StubModel, serve_in_thread

PAGE = Path(__file__).resolve().parents[2] / "docs" / "custom-verifier.md"


def template() -> str:
    (code,) = re.findall(r"^```python\n(.*?)^```", PAGE.read_text(), re.DOTALL | re.MULTILINE)
    return code


@pytest.fixture
def verifier(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "my_verifier.py"
    path.write_text(template())
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(path), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            post(url + "/seed_session", {})
            break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(30)


def post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_template_scores_a_run(tmp_path: Path, verifier: str) -> None:
    rows = [
        {
            "responses_create_params": {
                "input": [{"role": "user", "content": f"What is {i} + 1?"}]
            },
            "expected_answer": str(i + 1),
        }
        for i in range(3)
    ]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    with serve_in_thread(StubModel()) as base_url:
        job = {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "RolloutJob",
            "spec": {
                "input": {"uri": str(tasks)},
                "policy": {"baseURL": base_url, "model": "stub"},
                "sampling": {"numRepeats": 2},
                "verifier": {"url": verifier},
                "output": {"uri": str(out)},
            },
        }
        spec = tmp_path / "job.yaml"
        spec.write_text(yaml.safe_dump(job))
        proc = subprocess.run(
            [sys.executable, "-m", "gym_operator.cli", "run", str(spec), "--no-progress"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rollouts = read_committed(Storage(), parse_uri(str(out))).rollouts
    rewards = {(r["_ng_task_index"], r["_ng_rollout_index"]): r["reward"] for r in rollouts}
    # The stub is right for seed 0 and off by one for seed 1.
    assert rewards == {(t, 0): 1.0 for t in range(3)} | {(t, 1): 0.0 for t in range(3)}

    response = {"output": [{"type": "message", "content": [{"type": "output_text", "text": "1"}]}]}
    assert post(verifier + "/verify", {"response": response})[0] == 422
    assert post(verifier + "/verify", {"expected_answer": "1"})[0] == 400

"""`gymops demo` with the real embedded model, 2 tasks x 2 repeats, through local mode (`gymops
run`'s code path): real responses, math-verifier rewards, complete identities, a dataset, and
the model server stopped at the end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gym_operator.verify.base import response_text
from gym_operator.verify.builtins.math import check_math

pytestmark = pytest.mark.embedded

READY_LINE = re.compile(r"embedded model smollm2 ready at (http://127\.0\.0\.1:\d+/v1)")


def _rows(directory: Path, pattern: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob(pattern))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    output = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gym_operator.cli",
            "demo",
            "--output",
            str(output),
            "--limit",
            "2",
            "--repeats",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    return output, done


def test_every_task_and_repeat_has_one_real_rollout(demo_run: tuple[Path, Any]) -> None:
    output, _ = demo_run
    rollouts = _rows(output / "rollouts", "shard-*/part-*.jsonl")
    assert sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rollouts) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert _rows(output / "rollouts", "shard-*/failures-*.jsonl") == []
    assert (output / "rollouts" / "_SUCCESS").is_file()
    for row in rollouts:
        response = row["response"]
        assert response["model"] == "smollm2"
        assert response["status"] in ("completed", "incomplete")
        assert response_text(response).strip(), "the model answered with no text"
        assert response["usage"]["input_tokens"] > 0
        assert response["usage"]["output_tokens"] > 0
        assert row["expected_answer"] and row["responses_create_params"]["input"]


def test_rewards_are_the_math_verifiers(demo_run: tuple[Path, Any]) -> None:
    output, _ = demo_run
    for row in _rows(output / "rollouts", "shard-*/part-*.jsonl"):
        assert row["reward"] in (0.0, 1.0)
        expected = check_math(row, response_text(row["response"]), {}).reward
        assert row["reward"] == expected, response_text(row["response"])


def test_dataset_and_summary_are_written(demo_run: tuple[Path, Any]) -> None:
    output, done = demo_run
    assert (output / "dataset" / "README.md").is_file()
    assert (output / "rolloutjob.yaml").is_file() and (output / "dataset.yaml").is_file()
    assert "per-task pass rates" in done.stdout
    assert re.search(r"rollouts\s+│\s+4\s", done.stdout), done.stdout


def test_model_server_is_stopped_after_the_demo(demo_run: tuple[Path, Any]) -> None:
    _, done = demo_run
    found = READY_LINE.search(done.stderr)
    assert found, done.stderr[-2000:]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.URLError):
        opener.open(f"{found.group(1)}/models", timeout=5)

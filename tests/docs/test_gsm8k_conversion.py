"""The gsm8k conversion of docs/gsm8k.md turns gsm8k-shaped rows into tasks that `gymops run`
takes and the math verifier scores (no download: the rows are written here in gsm8k's shape)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel, serve_in_thread

PAGE = Path(__file__).resolve().parents[2] / "docs" / "gsm8k.md"


def conversion() -> dict[str, Any]:
    text = PAGE.read_text(encoding="utf-8")
    (code,) = re.findall(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    scope: dict[str, Any] = {}
    exec(compile(code, str(PAGE), "exec"), scope)
    return scope


def gsm8k_row(a: int, b: int) -> dict[str, str]:
    """A row shaped like openai/gsm8k's: reasoning, then `#### answer`."""
    total = a + b
    return {
        "question": f"What is {a} + {b}?",
        "answer": f"{a} plus {b} is <<{a}+{b}={total}>>{total}.\n#### {total:,}",
    }


def test_converted_rows_run_and_are_scored(tmp_path: Path) -> None:
    rows = [gsm8k_row(1000 * i, 1000 * i + 1) for i in range(3)]
    tasks = tmp_path / "gsm8k.jsonl"
    assert conversion()["write_tasks"](rows, str(tasks)) == 3
    first = json.loads(tasks.read_text().splitlines()[1])
    assert first["expected_answer"] == "2001" and first["id"] == "gsm8k-1"

    job_doc = next(
        d
        for d in yaml.safe_load_all(
            "\n---\n".join(re.findall(r"^```yaml\n(.*?)^```", PAGE.read_text(), re.S | re.M))
        )
        if d and d.get("kind") == "RolloutJob"
    )
    out = tmp_path / "out"
    with serve_in_thread(StubModel()) as base_url:
        spec = job_doc["spec"]
        spec["input"]["uri"] = str(tasks)
        spec["output"]["uri"] = str(out)
        spec["policy"] = {"baseURL": base_url, "model": "stub"}
        spec["sampling"]["numRepeats"] = 2
        path = tmp_path / "job.yaml"
        path.write_text(yaml.safe_dump(job_doc))
        proc = subprocess.run(
            [sys.executable, "-m", "gym_operator.cli", "run", str(path), "--no-progress"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rollouts = read_committed(Storage(), parse_uri(str(out))).rollouts
    rewards = {(r["_ng_task_index"], r["_ng_rollout_index"]): r["reward"] for r in rollouts}
    assert rewards == {(t, 0): 1.0 for t in range(3)} | {(t, 1): 0.0 for t in range(3)}

"""Helpers of the CLI tests (import as `clikit`): run `gymops` as a user does, snapshot files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def gymops(
    *args: str, timeout: float = 300, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `gymops ARGS` in a subprocess; returns it with stdout and stderr as text.

    `env` adds variables (None removes one)."""
    merged: dict[str, str | None] = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gym_operator.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in merged.items() if v is not None},
    )


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    """stdout and stderr with rich's line wrapping undone."""
    return (proc.stdout + proc.stderr).replace("\n", " ")


def math_task(i: int) -> dict[str, Any]:
    """A task the stub answers correctly for even seeds."""
    return {
        "responses_create_params": {
            "input": [{"role": "user", "content": f"What is {i} + {i + 1}?"}]
        },
        "expected_answer": str(2 * i + 1),
    }


def write_tasks(path: Path, rows: list[dict[str, Any]]) -> Path:
    """One JSON row a line."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_job(path: Path, *, tasks: Path, output: Path, base_url: str, **spec: Any) -> Path:
    """A RolloutJob YAML with the math verifier; `spec` replaces top-level spec fields."""
    body: dict[str, Any] = {
        "input": {"uri": str(tasks)},
        "policy": {"baseURL": base_url, "model": "stub"},
        "sampling": {"numRepeats": 2, "concurrency": 4},
        "verifier": {"builtin": "math"},
        "output": {"uri": str(output)},
        "retry": {
            "maxAttempts": 2,
            "requestTimeoutSeconds": 10,
            "maxRetrySeconds": 20,
            "backoffBaseSeconds": 0.01,
            "backoffMaxSeconds": 0.05,
        },
    }
    body.update(spec)
    doc = {"apiVersion": "gymops.dev/v1alpha1", "kind": "RolloutJob", "spec": body}
    path.write_text(yaml.safe_dump(doc))
    return path


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path (empty when root is absent)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }

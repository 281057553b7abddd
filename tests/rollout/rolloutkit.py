"""Helpers of the rollout tests (import as `rolloutkit`: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import yaml

from gym_operator.api import RolloutJob, parse_resource
from gym_operator.testing.loopback import run_in_thread


def math_task(i: int, extra: str = "") -> dict[str, Any]:
    """A task the stub answers i + (i + 1) to; odd seeds answer one more (wrong)."""
    return {
        "responses_create_params": {
            "input": [{"role": "user", "content": f"What is {i} + {i + 1}? {extra}".strip()}]
        },
        "expected_answer": str(2 * i + 1),
        "task_type": "sum",
    }


def write_tasks(path: Path, rows: list[dict[str, Any] | bytes]) -> Path:
    """Write rows (dicts as JSON, bytes as they are) one per line."""
    with path.open("wb") as fh:
        for row in rows:
            fh.write(row if isinstance(row, bytes) else json.dumps(row).encode())
            fh.write(b"\n")
    return path


def job_body(*, tasks_uri: str, output_uri: str, base_url: str, **overrides: Any) -> dict[str, Any]:
    """A RolloutJob body with a math verifier; `overrides` replace top-level spec fields."""
    spec: dict[str, Any] = {
        "input": {"uri": tasks_uri},
        "policy": {"baseURL": base_url, "model": "stub"},
        "sampling": {"numRepeats": 4, "concurrency": 16},
        "verifier": {"builtin": "math"},
        "output": {"uri": output_uri},
        "retry": {
            "maxAttempts": 3,
            "requestTimeoutSeconds": 5,
            "maxRetrySeconds": 20,
            "backoffBaseSeconds": 0.01,
            "backoffMaxSeconds": 0.05,
        },
        # These jobs fail rollouts on purpose and count the rows; tests/nemogym tests the policy.
        "failurePolicy": {"maxFailedFraction": 1.0},
    }
    spec.update(overrides)
    return {"apiVersion": "gymops.dev/v1alpha1", "kind": "RolloutJob", "spec": spec}


def make_job(**kwargs: Any) -> RolloutJob:
    """A validated RolloutJob (see job_body)."""
    job = parse_resource(job_body(**kwargs))
    assert isinstance(job, RolloutJob)
    return job


def write_job(path: Path, **kwargs: Any) -> Path:
    """The job as a YAML file."""
    path.write_text(yaml.safe_dump(job_body(**kwargs)))
    return path


def verifier_in_thread(builtin: str = "math") -> AbstractContextManager[str]:
    """The built-in verifier server on its own loop in a thread; yields its URL."""
    from gym_operator.verify.server import VerifierSettings, start_server

    settings = VerifierSettings(builtin=builtin, workers=1)
    return run_in_thread(lambda: start_server(settings), name="verifier")

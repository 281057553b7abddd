"""Helpers of the NeMo Gym tests (import as `ngkit`): NeMo Gym task rows, jobs, `gymops run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gym_operator.rollout.output import CommittedOutput, read_committed
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri


@dataclass
class NemoGym:
    """The running NeMo Gym servers: base URL by top-level config name, the resolved config
    every server read (NEMO_GYM_CONFIG_DICT), their logs' directory, and the resolved servers
    started only on demand (by name)."""

    urls: dict[str, str]
    config_yaml: str
    workdir: Path
    later: dict[str, dict[str, Any]]


def ask(text: str, **fields: Any) -> dict[str, Any]:
    """A NeMo Gym task row whose prompt is one user message (input_text part)."""
    content = [{"type": "input_text", "text": text}]
    message = {"role": "user", "type": "message", "content": content}
    return {"responses_create_params": {"input": [message]}, **fields}


def write_tasks(path: Path, rows: list[dict[str, Any]]) -> str:
    """The rows as a JSONL file; returns its path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def write_job(path: Path, *, tasks: str, model_url: str, verifier_url: str, **spec: Any) -> Path:
    """A RolloutJob YAML with `verifier.url`; `spec` entries replace top-level spec fields."""
    body: dict[str, Any] = {
        "input": {"uri": tasks},
        "policy": {"baseURL": model_url, "model": "double", "api": "chat"},
        "sampling": {"numRepeats": 2, "concurrency": 4},
        "verifier": {"url": verifier_url, "timeoutSeconds": 60, "maxAttempts": 2},
        "output": {"uri": f"file://{path.parent}/out"},
        "retry": {"maxAttempts": 2, "backoffBaseSeconds": 0.01, "backoffMaxSeconds": 0.05},
    }
    body.update(spec)
    job = {"apiVersion": "gymops.dev/v1alpha1", "kind": "RolloutJob", "spec": body}
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    return path


def gymops_run(job_file: Path) -> subprocess.CompletedProcess[str]:
    """`gymops run FILE --no-progress` in a subprocess, as a user runs it."""
    code = "import sys; from gym_operator import cli; sys.exit(cli.main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, "run", str(job_file), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )


def output_of(job_file: Path) -> CommittedOutput:
    """Every committed row of the job written by `write_job`."""
    return read_committed(Storage(), parse_uri(f"file://{job_file.parent}/out"))


def ng_collect_rollouts(
    ng: NemoGym, tasks: str, output: Path, agent: str, repeats: int
) -> list[dict[str, Any]]:
    """NeMo Gym's own `ng_collect_rollouts` over the tasks, against the running servers; returns
    the rows it wrote. Its settings go where NeMo Gym reads them: the running servers' config
    (NEMO_GYM_CONFIG_DICT, which makes every process use it instead of asking a head server)."""
    config = yaml.safe_load(ng.config_yaml)
    config.update(
        agent_name=agent,
        input_jsonl_fpath=tasks,
        output_jsonl_fpath=str(output),
        num_repeats=repeats,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NEMO_GYM_CONFIG_DICT"] = yaml.safe_dump(config)
    command = Path(__file__).resolve().parents[2] / ".venv-nemogym" / "bin" / "ng_collect_rollouts"
    done = subprocess.run(
        [str(command)], cwd=output.parent, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines() if line]

"""`gymops run` refuses policy.server and policy.endpointRef: only the operator resolves them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gym_operator import cli

JOB = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "local"},
    "spec": {
        "input": {"uri": "tasks.jsonl"},
        "verifier": {"builtin": "math"},
        "output": {"uri": "out/"},
    },
}


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"server": {"image": "vllm/vllm-openai", "model": "m"}}, "policy.server"),
        ({"endpointRef": {"name": "vllm", "port": 8000}, "model": "m"}, "policy.endpointRef"),
    ],
)
def test_local_run_names_the_field_it_cannot_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: dict, field: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({**JOB, "spec": {**JOB["spec"], "policy": policy}}))
    assert cli.main(["run", str(path), "--no-progress"]) == 2
    assert f"{field} needs the operator" in capsys.readouterr().out

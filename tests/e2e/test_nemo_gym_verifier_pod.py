"""NeMo Gym's own, unmodified string_match resource server as the verifier pod (verifier.image)
of a RolloutJob on the real control plane: every rollout is scored by it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from clusterkit import ROOT, Cluster, Operator, World
from serverkit import wait_verifier_ready

from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri

NG_PYTHON = ROOT / ".venv-nemogym" / "bin" / "python"
NG_IMAGE = "registry.test/nemo-gym/string-match"
"""A NeMo Gym resource server image: string_match from its own config, serving on port 8000."""
NG_ENTRYPOINT = [
    str(NG_PYTHON),
    str(ROOT / "tests" / "nemogym" / "ng_image.py"),
    "string_match",
    "resources_servers/string_match/configs/string_match.yaml",
    "8000",
]
TASKS = 3


@pytest.fixture(autouse=True)
def nemo_gym_image(cluster: Cluster) -> None:
    """Teach the node agent what the NeMo Gym image runs (NeMo Gym's venv, its server)."""
    if not NG_PYTHON.exists():
        pytest.fail(f"{NG_PYTHON} is missing: run `make venv-nemogym`")
    cluster.kube.agent.images.setdefault(NG_IMAGE, {"": NG_ENTRYPOINT})


def string_task(i: int) -> dict[str, Any]:
    """A NeMo Gym string_match row the stub model answers as `... #### <sum>` (+1 on odd seeds)."""
    return {
        "responses_create_params": {
            "input": [{"role": "user", "content": f"What is {i} + {i + 1}?"}]
        },
        "expected_answer": f"#### {2 * i + 1}",
        "extraction_mode": "last_line",
    }


def put_rows(world: World, key: str, rows: list[dict[str, Any]]) -> str:
    """The rows as JSONL in the world's bucket; returns the URI."""
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    s3 = boto3.client("s3", endpoint_url=world.s3_url, region_name="us-east-1")
    s3.put_object(Bucket=world.bucket, Key=key, Body=body)
    return f"s3://{world.bucket}/{key}"


@pytest.mark.slow
@pytest.mark.parametrize("api", ["chat", "responses"])
def test_every_rollout_is_scored_by_a_nemo_gym_server_pod(
    cluster: Cluster, operator: Operator, world: World, api: str
) -> None:
    name = f"ng-{api}"
    tasks = put_rows(world, f"ng-tasks/{name}.jsonl", [string_task(i) for i in range(TASKS)])
    body = world.rolloutjob(
        name,
        input={"uri": tasks},
        policy={"baseURL": world.model_url, "model": "stub", "api": api},
        verifier={"image": NG_IMAGE, "timeoutSeconds": 60},
        suspend=True,
    )
    # Created suspended, resumed once NeMo Gym's server serves (it takes seconds to start).
    cluster.create(body)
    wait_verifier_ready(cluster, name)
    cluster.patch_spec("RolloutJob", name, {"suspend": False})
    status = cluster.wait_phase("RolloutJob", name, "Succeeded", timeout=300)

    settings = S3Settings(endpoint_url=world.s3_url, region="us-east-1")
    out = read_committed(Storage(settings), parse_uri(f"s3://{world.bucket}/rollouts/{name}/"))
    assert out.failures == [], out.failures[:2]
    identities = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert identities == [(t, r) for t in range(TASKS) for r in range(2)]
    for row in out.rollouts:
        i = row["_ng_task_index"]
        right = row["_ng_rollout_index"] % 2 == 0  # the stub adds one on odd seeds
        assert row["reward"] == (1.0 if right else 0.0), row
        # NeMo Gym's own answer fields are kept in the row.
        assert row["extracted_answer"] == f"#### {2 * i + 1 if right else 2 * i + 2}"
        assert row["response"]["object"] == "response"
    assert status["progress"]["completed"] == 2 * TASKS
    assert status["rewards"]["mean"] == pytest.approx(0.5)

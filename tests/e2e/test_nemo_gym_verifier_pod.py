"""NeMo Gym's unmodified resource servers as a RolloutJob's verifier pod score every rollout.

string_match, mcqa, math_with_judge (its LLM judge on) and example_single_tool_call, each as
verifier.image on the real control plane, with the rows, rewards and answer fields of local mode.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from clusterkit import ROOT, Cluster, Operator, World
from opfixtures import port_of
from serverkit import wait_verifier_ready

from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import run_in_thread

NEMOGYM_TESTS = ROOT / "tests" / "nemogym"
if str(NEMOGYM_TESTS) not in sys.path:
    sys.path.append(str(NEMOGYM_TESTS))
import model_double  # noqa: E402
from test_resource_servers_score import CASES  # noqa: E402

NG_PYTHON = ROOT / ".venv-nemogym" / "bin" / "python"
NG_IMAGE_SCRIPT = ROOT / "tests" / "nemogym" / "ng_image.py"
ABSENT = object()
"""An answer field NeMo Gym's server does not send for that task."""


@dataclass(frozen=True)
class NgServer:
    """One NeMo Gym resource server as an image, and what it must say about its local tasks."""

    name: str
    """Top-level config name (a key of CASES, the local tests' rows and rewards)."""
    config: str
    """Its config file, relative to the NeMo Gym package."""
    answers: list[dict[str, Any]]
    """Per task (CASES order): the answer fields NeMo Gym's server must put in the row."""
    judged: bool = False
    """Run with its LLM judge on: NeMo Gym's model server in the pod, calling the model double."""
    tool_answers: tuple[str | None, ...] = ()
    """Per task: what the server's tool (called in the pod) answered in the rollout, if called."""

    @property
    def image(self) -> str:
        return f"registry.test/nemo-gym/{self.name.replace('_', '-')}"

    def entrypoint(self, model_url: str) -> list[str]:
        """The image's command (see ng_image.py): the judge's model server first when judged."""
        command = [str(NG_PYTHON), str(NG_IMAGE_SCRIPT), self.name, self.config, "8000"]
        if not self.judged:
            return command
        judge = {
            "policy_base_url": model_url,
            "policy_api_key": "none",
            "policy_model_name": model_double.COMPLETE,
            self.name: {"resources_servers": {self.name: {"should_use_judge": True}}},
        }
        return [*command, json.dumps(judge), "policy_model"]


SERVERS = {
    s.name: s
    for s in (
        NgServer(
            "string_match",
            "resources_servers/string_match/configs/string_match.yaml",
            [
                {"extracted_answer": "Paris"},
                {"extracted_answer": "Lyon"},
                {"extracted_answer": "80 km/h"},
            ],
        ),
        NgServer(
            "mcqa",
            "resources_servers/mcqa/configs/mcqa.yaml",
            [{"extracted_answer": "B"}, {"extracted_answer": "D"}],
        ),
        NgServer(
            "math_with_judge",
            "resources_servers/math_with_judge/configs/math_with_judge.yaml",
            # math-verify settles the first two; the third goes to the judge, which is reached.
            [
                {"extracted_answer": "4", "library_reward": 1.0, "judge_evaluations": None},
                {"library_reward": 1.0, "judge_evaluations": None},
                {"extracted_answer": "6", "library_reward": 0.0},
            ],
            judged=True,
        ),
        NgServer(
            "example_single_tool_call",
            "resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml",
            [{"extracted_answer": ABSENT}, {"extracted_answer": ABSENT}],
            tool_answers=("The weather in SF is cold.", None),
        ),
    )
}


@pytest.fixture(scope="module")
def double_url() -> Iterator[str]:
    """The scripted model of the NeMo Gym tests (model_double) on loopback, ending in /v1."""
    with run_in_thread(model_double.start, name="model-double") as url:
        yield url


@pytest.fixture(autouse=True)
def nemo_gym_images(cluster: Cluster, double_url: str) -> None:
    """Teach the node agent what the NeMo Gym images run; pods reach the model double."""
    if not NG_PYTHON.exists():
        pytest.fail(f"{NG_PYTHON} is missing: run `make venv-nemogym`")
    cluster.kube.agent.expose(port_of(double_url))
    for server in SERVERS.values():
        cluster.kube.agent.images.setdefault(server.image, {"": server.entrypoint(double_url)})


def put_rows(world: World, key: str, rows: list[dict[str, Any]]) -> str:
    """The rows as JSONL in the world's bucket; returns the URI."""
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    s3 = boto3.client("s3", endpoint_url=world.s3_url, region_name="us-east-1")
    s3.put_object(Bucket=world.bucket, Key=key, Body=body)
    return f"s3://{world.bucket}/{key}"


def assert_answer_fields(row: dict[str, Any], expected: dict[str, Any]) -> None:
    """NeMo Gym's own answer fields are kept in the row, as it gave them."""
    for key, value in expected.items():
        if value is ABSENT:
            assert key not in row, (key, row)
        else:
            assert row[key] == value, (key, row)


def tool_outputs(row: dict[str, Any]) -> list[str]:
    """The tool results in the rollout's output, parsed as the server sent them."""
    items = [i for i in row["response"]["output"] if i.get("type") == "function_call_output"]
    return [json.loads(i["output"])["weather_description"] for i in items]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("server", "api"),
    [
        ("string_match", "chat"),
        ("string_match", "responses"),
        ("mcqa", "chat"),
        ("math_with_judge", "chat"),
        ("example_single_tool_call", "chat"),
    ],
)
def test_every_rollout_is_scored_by_a_nemo_gym_server_pod(
    cluster: Cluster,
    operator: Operator,
    world: World,
    double_url: str,
    server: str,
    api: str,
) -> None:
    ng, cases = SERVERS[server], CASES[server]
    name = f"ng-{server.replace('_', '-')}-{api}"
    tasks = put_rows(world, f"ng-tasks/{name}.jsonl", [row for row, _ in cases])
    body = world.rolloutjob(
        name,
        input={"uri": tasks},
        policy={"baseURL": double_url, "model": "double", "api": api},
        verifier={"image": ng.image, "timeoutSeconds": 60},
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
    assert identities == [(t, r) for t in range(len(cases)) for r in range(2)]
    for row in out.rollouts:
        task = row["_ng_task_index"]
        assert row["reward"] == cases[task][1], (task, row["response"]["output"])
        assert row["response"]["object"] == "response"
        assert_answer_fields(row, ng.answers[task])
        tool = ng.tool_answers[task] if ng.tool_answers else None
        assert tool_outputs(row) == ([tool] if tool else []), row["response"]["output"]
    if ng.judged:
        (wrong,) = {r["_ng_task_index"] for r in out.rollouts if r["reward"] == 0.0}
        for row in (r for r in out.rollouts if r["_ng_task_index"] == wrong):
            # The judge (NeMo Gym's model server in the pod) was asked and answered.
            (evaluation,) = row["judge_evaluations"]
            assert evaluation["response"]["object"] == "response"
    assert status["progress"]["completed"] == 2 * len(cases)
    mean = sum(reward for _, reward in cases) / len(cases)
    assert status["rewards"]["mean"] == pytest.approx(mean, abs=1e-4)  # status rounds

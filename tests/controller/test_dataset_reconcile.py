"""The Dataset reconcile over a table of observed worlds: sources awaited, the builder created
once, followed, its result copied into status (an in-memory KubeClient; no kopf, no server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakekube import FakeKube, applied

from gym_operator.api import DatasetStatus
from gym_operator.controller import constants as c
from gym_operator.controller import dataset, reconcile
from gym_operator.controller.config import OperatorConfig
from gym_operator.controller.runtime import Runtime

NS = "team-a"
NAME = "sft1"
BUILD, SPEC, SOURCE = f"{NAME}-build", f"{NAME}-spec", "run1"


def body(output: Path, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": "ds-uid",
            "generation": 1,
            "labels": labels,
        },
        "spec": {
            "sources": [{"rolloutJobRef": SOURCE}],
            "kind": "sft",
            "format": "trl",
            "output": {"uri": output.as_uri() + "/"},
        },
    }


def source(kube: FakeKube, phase: str, message: str = "") -> None:
    kube.put(
        {
            "kind": "RolloutJob",
            "metadata": {"name": SOURCE, "namespace": NS},
            "spec": {"output": {"uri": "s3://b/rollouts/run1/"}},
            "status": {"phase": phase, "message": message, "output": {"uri": "s3://b/r/run1/"}},
        }
    )


def builder(kube: FakeKube, **status: Any) -> None:
    kube.objects[("Job", NS, BUILD)]["status"] = status


def started(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    source(kube, "Succeeded")
    applied(resource, dataset.reconcile(rt, resource))


@dataclass
class World:
    """What the cluster holds before one reconcile, and what that reconcile must do."""

    name: str
    prepare: Callable[[FakeKube, dict[str, Any], Runtime], None]
    phase: str
    reason: str
    creates: list[tuple[str, str]] = field(default_factory=list)
    queued: bool = False


def running_source(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    source(kube, "Running")


def missing_source(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    pass


def failed_source(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    source(kube, "Failed", "JobFailed: shard 1")


def ready_source(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    source(kube, "Succeeded")


def builder_running(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    started(kube, resource, rt)
    builder(kube, active=1, ready=1)
    labels = {c.LABEL_DATASET: NAME, c.LABEL_COMPONENT: c.COMPONENT_BUILDER}
    kube.put(
        {
            "kind": "Pod",
            "metadata": {"name": f"{BUILD}-x", "namespace": NS, "labels": labels},
            "status": {"phase": "Running"},
        }
    )


def builder_done(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    started(kube, resource, rt)
    builder(kube, succeeded=1, conditions=[{"type": "Complete", "status": "True"}])


def builder_deleted(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    started(kube, resource, rt)
    del kube.objects[("Job", NS, BUILD)]


WORLDS = [
    World("source running", running_source, "Pending", c.REASON_WAITING),
    World("source missing", missing_source, "Pending", c.REASON_SOURCE_MISSING),
    World("source failed", failed_source, "Failed", c.REASON_SOURCE_FAILED),
    World(
        "sources done",
        ready_source,
        "Pending",
        "PodsPending",
        [("ConfigMap", SPEC), ("Job", BUILD)],
    ),
    World("builder running", builder_running, "Running", "PodsRunning"),
    World("builder done", builder_done, "Succeeded", "JobComplete"),
    World("deleted builder", builder_deleted, "Pending", "PodsPending", [("Job", BUILD)]),
    World(
        "held by kueue",
        ready_source,
        "Pending",
        c.REASON_WAITING_FOR_ADMISSION,
        [("ConfigMap", SPEC), ("Job", BUILD)],
        queued=True,
    ),
]


@pytest.mark.parametrize("world", WORLDS, ids=[w.name for w in WORLDS])
def test_one_reconcile_acts_on_what_it_observes(world: World, tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    labels = {c.KUEUE_QUEUE_LABEL: "team-a"} if world.queued else {}
    resource = body(tmp_path / "out", **labels)
    resource["status"] = reconcile.admit(rt, DatasetStatus, resource).status
    world.prepare(kube, resource, rt)
    kube.actions.clear()

    outcome = dataset.reconcile(rt, resource)

    assert kube.creates() == world.creates
    assert kube.writes("delete") == []
    applied(resource, outcome)
    status = resource["status"]
    assert (status["phase"], status["reason"]) == (world.phase, world.reason)
    DatasetStatus.model_validate(status)


def test_the_builder_reads_the_resolved_source_prefixes(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body(tmp_path / "out")
    resource["status"] = reconcile.admit(rt, DatasetStatus, resource).status
    started(kube, resource, rt)
    args = kube.objects[("Job", NS, BUILD)]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--source-uri") + 1] == "s3://b/r/run1/"
    assert c.ANNOTATION_APPLIED_SPEC in resource["metadata"]["annotations"]


def test_a_finished_build_copies_its_result_file_into_status(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body(tmp_path / "out")
    resource["status"] = reconcile.admit(rt, DatasetStatus, resource).status
    builder_done(kube, resource, rt)
    result = {
        "counts": {"input": 8, "kept": 5, "dropped": {"min_reward": 3}},
        "splits": {"train": 4, "validation": 1},
        "files": ["train.jsonl"],
        "card": "README.md",
    }
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / dataset.DATASET_RESULT_FILE).write_text(json.dumps(result))
    applied(resource, dataset.reconcile(rt, resource))
    status = resource["status"]
    assert status["counts"] == result["counts"] and status["splits"]["train"] == 4
    assert status["files"] == ["train.jsonl"]

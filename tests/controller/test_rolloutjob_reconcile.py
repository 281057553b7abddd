"""The RolloutJob reconcile over a table of observed worlds: what it creates, patches and
deletes, and the status it writes (an in-memory KubeClient; no kopf, no server)."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakekube import FakeKube, applied

from gym_operator.api import RolloutJobStatus
from gym_operator.controller import constants as c
from gym_operator.controller import reconcile, rolloutjob
from gym_operator.controller.config import OperatorConfig
from gym_operator.controller.runtime import Runtime

NS = "team-a"
NAME = "run1"
GEN, VERIFIER, SPEC = f"{NAME}-gen", f"{NAME}-verifier", f"{NAME}-spec"
CHILDREN = [("ConfigMap", SPEC), ("Deployment", VERIFIER), ("Service", VERIFIER), ("Job", GEN)]


def body(output: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "RolloutJob",
        "metadata": {"name": NAME, "namespace": NS, "uid": "rj-uid", "generation": 1},
        "spec": {
            "input": {"uri": "s3://bucket/tasks.jsonl", "limit": 4},
            "policy": {"baseURL": "http://vllm:8000/v1", "model": "m"},
            "sampling": {"numRepeats": 2},
            "verifier": {"builtin": "math"},
            "output": {"uri": output},
            "parallelism": 2,
            **spec,
        },
    }


def admitted(resource: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    """The resource as the create handler leaves it: status Pending."""
    outcome = reconcile.admit(rt, RolloutJobStatus, resource, rolloutjob.first_status)
    resource["status"] = outcome.status
    return resource


def started(resource: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    """After the first reconcile made the children (its status and annotations applied)."""
    outcome = rolloutjob.reconcile(rt, admitted(resource, rt))
    applied(resource, outcome)
    return resource


def job_status(kube: FakeKube, **status: Any) -> None:
    kube.objects[("Job", NS, GEN)]["status"] = status


def pod(kube: FakeKube, name: str, phase: str, component: str = c.COMPONENT_GENERATOR) -> None:
    labels = {c.LABEL_ROLLOUTJOB: NAME, c.LABEL_COMPONENT: component}
    kube.put(
        {
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "status": {"phase": phase, "containerStatuses": [{"name": "generator", "state": {}}]},
        }
    )


def done(kube: FakeKube) -> None:
    job_status(kube, succeeded=2, conditions=[{"type": "Complete", "status": "True"}])


def failed_index(kube: FakeKube) -> None:
    condition = {"type": "Failed", "status": "True", "reason": "FailedIndexes", "message": "x"}
    job_status(kube, failed=2, failedIndexes="1", conditions=[condition])


def running(kube: FakeKube) -> None:
    job_status(kube, active=2, ready=2)
    pod(kube, f"{GEN}-0", "Running")


@dataclass
class World:
    """What the cluster holds before one reconcile, and what that reconcile must do."""

    name: str
    prepare: Callable[[FakeKube, dict[str, Any], Runtime], None]
    phase: str
    reason: str
    creates: list[tuple[str, str]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    patches: list[tuple[str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


def first_pass(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    admitted(resource, rt)


def pending(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    started(resource, rt)


def run(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    started(resource, rt)
    running(kube)


def fail(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    run(kube, resource, rt)
    failed_index(kube)


def finish(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    run(kube, resource, rt)
    done(kube)


def suspend(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    run(kube, resource, rt)
    resource["spec"]["suspend"] = True


def delete_verifier(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    run(kube, resource, rt)
    del kube.objects[("Deployment", NS, VERIFIER)]


def stale_status(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    """The Job finished and the verifier went, but kopf's body still says Running."""
    run(kube, resource, rt)
    done(kube)
    stale = copy.deepcopy(resource)
    applied(stale, rolloutjob.reconcile(rt, stale))  # the pass that saw the finish
    assert ("Deployment", NS, VERIFIER) not in kube.objects
    resource["status"]["phase"] = "Running"


def refused(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    started(resource, rt)
    kube.refused_kinds.clear()


def forbidden(kube: FakeKube, resource: dict[str, Any], rt: Runtime) -> None:
    admitted(resource, rt)
    kube.refused_kinds.add("Job")


WORLDS = [
    World("first pass", first_pass, "Pending", "PodsPending", CHILDREN, events=["ChildrenCreated"]),
    World("job pending", pending, "Pending", "PodsPending"),
    World("running", run, "Running", "PodsRunning", events=["PodsRunning"]),
    World(
        "a failed index",
        fail,
        "Failed",
        "JobFailed",
        deletes=[("Deployment", VERIFIER), ("Service", VERIFIER)],
        events=["JobFailed"],
    ),
    World(
        "all done",
        finish,
        "Succeeded",
        "JobComplete",
        deletes=[("Deployment", VERIFIER), ("Service", VERIFIER)],
        events=["JobComplete"],
    ),
    World(
        "suspended", suspend, "Suspended", "Suspended", patches=[("Job", GEN)], events=["Suspended"]
    ),
    World(
        "deleted child",
        delete_verifier,
        "Running",
        "PodsRunning",
        creates=[("Deployment", VERIFIER)],
        events=["ChildRestored", "PodsRunning"],
    ),
    World("stale status", stale_status, "Succeeded", "JobComplete", events=["JobComplete"]),
    World(
        "forbidden", forbidden, "Pending", "Forbidden", creates=CHILDREN[:3], events=["Forbidden"]
    ),
]


@pytest.mark.parametrize("world", WORLDS, ids=[w.name for w in WORLDS])
def test_one_reconcile_acts_on_what_it_observes(world: World, tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body((tmp_path / "out").as_uri() + "/")
    world.prepare(kube, resource, rt)
    kube.actions.clear()

    outcome = rolloutjob.reconcile(rt, resource)

    assert kube.creates() == world.creates
    assert kube.writes("delete") == world.deletes
    assert kube.writes("patch") == world.patches
    assert [e.reason for e in outcome.events] == world.events
    applied(resource, outcome)
    status = resource["status"]
    assert (status["phase"], status["reason"]) == (world.phase, world.reason)
    RolloutJobStatus.model_validate(status)  # the wire form of api's model
    true = {x["type"] for x in status["conditions"] if x["status"] == "True"}
    assert (
        true & set(c.ASPECT_CONDITIONS)
        == {
            "Pending": {"Progressing"},
            "Running": {"Ready", "Progressing"},
            "Succeeded": {"Complete"},
            "Failed": {"Failed"},
            "Suspended": {"Suspended"},
        }[world.phase]
    )


def test_a_forbidden_child_is_named_in_status_and_created_once_allowed(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body((tmp_path / "out").as_uri() + "/")
    forbidden(kube, resource, rt)
    outcome = rolloutjob.reconcile(rt, resource)
    applied(resource, outcome)
    assert resource["status"]["message"].startswith("the operator may not create Job: ")
    assert outcome.events[0].warning
    kube.refused_kinds.clear()
    kube.actions.clear()
    applied(resource, rolloutjob.reconcile(rt, resource))
    assert kube.creates() == [("Job", GEN)]


def test_an_unchanged_world_writes_nothing(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body((tmp_path / "out").as_uri() + "/")
    run(kube, resource, rt)
    applied(resource, rolloutjob.reconcile(rt, resource))
    kube.actions.clear()
    outcome = rolloutjob.reconcile(rt, resource)
    assert (outcome.status, outcome.events, kube.actions) == ({}, [], [])


def test_a_refused_spec_change_is_not_applied_and_said_once(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body((tmp_path / "out").as_uri() + "/")
    run(kube, resource, rt)
    resource["spec"]["parallelism"] = 4
    del kube.objects[("Job", NS, GEN)]  # re-created from the applied spec, not the edit
    kube.objects.pop(("Pod", NS, f"{GEN}-0"))
    outcome = rolloutjob.reconcile(rt, resource)
    applied(resource, outcome)
    assert kube.objects[("Job", NS, GEN)]["spec"]["completions"] == 2
    (accepted,) = [x for x in resource["status"]["conditions"] if x["type"] == "SpecAccepted"]
    assert accepted["status"] == "False" and "spec.parallelism" in accepted["message"]
    assert "SpecChangeRefused" in [e.reason for e in outcome.events]
    again = rolloutjob.reconcile(rt, resource)
    assert "SpecChangeRefused" not in [e.reason for e in again.events]


def test_a_finished_job_past_its_ttl_is_deleted(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    resource = body((tmp_path / "out").as_uri() + "/", ttlSecondsAfterFinished=60)
    kube.put(copy.deepcopy(resource))
    finish(kube, resource, rt)
    applied(resource, rolloutjob.reconcile(rt, resource))
    assert resource["status"]["phase"] == "Succeeded"
    assert rolloutjob.reconcile(rt, resource).events == []  # not due yet
    past = datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(seconds=61)
    resource["status"]["completionTime"] = past.strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.actions.clear()
    outcome = rolloutjob.reconcile(rt, resource)
    assert [e.reason for e in outcome.events] == ["TTLExpired"]
    assert kube.writes("delete") == [("RolloutJob", NAME)]


def test_admission_refuses_a_bad_spec_naming_the_field(tmp_path: Path) -> None:
    rt = Runtime(cfg=OperatorConfig(), kube=FakeKube())
    resource = body((tmp_path / "out").as_uri() + "/", parallelism=0)
    outcome = reconcile.admit(rt, RolloutJobStatus, resource, rolloutjob.first_status)
    assert outcome.refusal is not None and "parallelism" in outcome.refusal
    assert (outcome.status["phase"], outcome.status["reason"]) == ("Failed", "InvalidSpec")
    assert rolloutjob.reconcile(rt, {**resource, "status": outcome.status}).status == {}


def test_the_first_status_says_where_the_output_goes(tmp_path: Path) -> None:
    rt = Runtime(cfg=OperatorConfig(), kube=FakeKube())
    resource = admitted(body((tmp_path / "out").as_uri() + "/"), rt)
    status = resource["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "Accepted")
    assert status["progress"]["summary"] == "0/8"
    assert json.dumps(status).count("startTime") == 0


def test_generators_wait_for_the_managed_model_server(tmp_path: Path) -> None:
    kube = FakeKube()
    rt = Runtime(cfg=OperatorConfig(), kube=kube)
    server = {"image": "vllm/vllm-openai:v0.9", "model": "Qwen/Qwen3-8B"}
    resource = body((tmp_path / "out").as_uri() + "/", policy={"server": server})
    admitted(resource, rt)
    applied(resource, rolloutjob.reconcile(rt, resource))
    made = kube.creates()
    assert ("Deployment", f"{NAME}-server") in made and ("Job", GEN) not in made
    assert resource["status"]["reason"] == c.REASON_SERVER_STARTING
    document = json.loads(kube.objects[("ConfigMap", NS, SPEC)]["data"][c.SPEC_FILE])
    assert document["spec"]["policy"]["baseURL"] == f"http://{NAME}-server:8000/v1"
    assert "server" not in document["spec"]["policy"]
    kube.objects[("Deployment", NS, f"{NAME}-server")]["status"] = {"readyReplicas": 1}
    kube.actions.clear()
    applied(resource, rolloutjob.reconcile(rt, resource))
    assert kube.creates() == [("Job", GEN)]
    (ready,) = [x for x in resource["status"]["conditions"] if x["type"] == "ServerReady"]
    assert ready["status"] == "True"

"""Kueue: queued Jobs start suspended with the queue's labels; the operator never admits them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gym_operator.api import Dataset, Phase, RolloutJob, parse_resource
from gym_operator.controller import builders, jobstate, kueue, serverbuilders
from gym_operator.controller import constants as c
from gym_operator.controller.config import OperatorConfig

CFG = OperatorConfig()
QUEUE = {"kueue.x-k8s.io/queue-name": "team-a-gpus", "kueue.x-k8s.io/priority-class": "batch"}
JOB: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "run1", "namespace": "team-a", "labels": {**QUEUE, "team": "a"}},
    "spec": {
        "input": {"uri": "s3://b/t.jsonl"},
        "policy": {"server": {"image": "vllm/vllm-openai", "model": "m"}},
        "verifier": {"builtin": "math"},
        "output": {"uri": "s3://b/o/"},
    },
}


def rollout_job(labels: dict[str, str] | None = None, **spec: Any) -> RolloutJob:
    body = copy.deepcopy(JOB)
    if labels is not None:
        body["metadata"]["labels"] = labels
    body["spec"].update(spec)
    job = parse_resource(body)
    assert isinstance(job, RolloutJob)
    return job


def test_queued_generator_job_is_created_suspended_with_the_kueue_labels() -> None:
    manifest = builders.build_generator_job(rollout_job(), CFG)
    assert manifest["spec"]["suspend"] is True
    labels = manifest["metadata"]["labels"]
    assert labels.items() >= QUEUE.items()
    assert "team" not in labels  # only Kueue's labels pass


def test_unqueued_generator_job_runs_unless_suspended() -> None:
    assert builders.build_generator_job(rollout_job(labels={}), CFG)["spec"]["suspend"] is False
    suspended = builders.build_generator_job(rollout_job(labels={}, suspend=True), CFG)
    assert suspended["spec"]["suspend"] is True


def test_managed_by_passes_to_the_generator_job() -> None:
    job = rollout_job(jobManagedBy="kueue.x-k8s.io/multikueue")
    assert builders.build_generator_job(job, CFG)["spec"]["managedBy"] == (
        "kueue.x-k8s.io/multikueue"
    )
    assert "managedBy" not in builders.build_generator_job(rollout_job(), CFG)["spec"]


def test_model_server_deployment_carries_the_queue_labels() -> None:
    manifest = serverbuilders.build_server_deployment(rollout_job())
    assert manifest["metadata"]["labels"].items() >= QUEUE.items()
    assert manifest["spec"]["template"]["metadata"]["labels"].items() >= QUEUE.items()


def test_queued_dataset_builder_is_created_suspended() -> None:
    body = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "d", "namespace": "team-a", "labels": QUEUE},
        "spec": {
            "sources": [{"uri": "s3://b/o/"}],
            "kind": "sft",
            "format": "trl",
            "output": {"uri": "s3://b/d/"},
        },
    }
    dataset = parse_resource(body)
    assert isinstance(dataset, Dataset)
    manifest = builders.build_dataset_job(dataset, ["s3://b/o/"], CFG)
    assert manifest["spec"]["suspend"] is True
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a-gpus"


@pytest.mark.parametrize(
    ("job_suspended", "spec_suspend", "queued", "server_ready", "patch"),
    [
        (False, True, False, True, True),  # the user suspends: applied at once
        (False, True, True, True, True),  # ... queued or not
        (True, True, False, True, None),  # already suspended
        (True, False, False, True, False),  # resume: un-suspend
        (True, False, False, False, None),  # resume waits for the model server
        (True, False, True, True, None),  # Kueue admits a queued Job, never the operator
        (False, False, True, True, None),  # Kueue admitted it: left alone
        (None, False, True, True, None),
        (None, False, False, True, False),
    ],
)
def test_suspend_patch(
    job_suspended: bool | None,
    spec_suspend: bool,
    queued: bool,
    server_ready: bool,
    patch: bool | None,
) -> None:
    assert kueue.suspend_patch(job_suspended, spec_suspend, queued, server_ready) is patch


def test_a_job_kueue_holds_is_waiting_for_admission_not_suspended() -> None:
    held = jobstate.job_state({"spec": {"suspend": True}, "status": {}}, [])
    waiting = jobstate.admission_state(held, spec_suspend=False, queue="team-a-gpus")
    assert (waiting.phase, waiting.reason) == (Phase.PENDING, c.REASON_WAITING_FOR_ADMISSION)
    assert "team-a-gpus" in waiting.message
    assert (
        jobstate.admission_state(held, spec_suspend=True, queue="team-a-gpus").phase
        == Phase.SUSPENDED
    )
    assert jobstate.admission_state(held, spec_suspend=False, queue=None).phase == Phase.SUSPENDED

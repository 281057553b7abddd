"""A RolloutJob with policy.baseURLs: the generators are gated on the first replica and read
every replica from their spec (no single baseURL added beside them)."""

from __future__ import annotations

from gym_operator.api import RolloutJob, parse_resource
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.controller import serving

URLS = ["http://vllm-0.vllm:8000/v1", "http://vllm-1.vllm:8000/v1"]


def _job() -> RolloutJob:
    job = parse_resource(
        {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "RolloutJob",
            "metadata": {"name": "replicas", "namespace": "ml"},
            "spec": {
                "input": {"uri": "s3://b/tasks.jsonl"},
                "policy": {"baseURLs": URLS, "model": "m"},
                "verifier": {"builtin": "math"},
                "output": {"uri": "s3://b/out/"},
            },
        }
    )
    assert isinstance(job, RolloutJob)
    return job


def test_generators_start_without_waiting_for_a_server() -> None:
    job = _job()
    assert serving.static_base_url(job) == URLS[0]
    assert not serving.generators_wait(job)


def test_the_workers_spec_keeps_every_replica() -> None:
    job = _job()
    policy = serving.worker_policy(job, URLS[0])
    spec = RolloutJobSpec.model_validate({**job.spec.wire(), "policy": policy})
    assert spec.policy.urls() == URLS and spec.policy.base_url is None

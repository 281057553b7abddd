"""Datasets wait for their RolloutJobs, then run one builder Job and report its result."""

from __future__ import annotations

import json
from typing import Any

import boto3
from clusterkit import GROUP, VERSION, Cluster, Operator, rolloutjob, wait_for


def dataset(name: str, *sources: dict[str, str], output: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {
            "sources": list(sources),
            "kind": "sft",
            "format": "trl",
            "output": {"uri": output},
        },
    }


def test_dataset_waits_for_its_rolloutjob_then_builds(
    cluster: Cluster, operator: Operator, s3_bucket: str, s3_env: str
) -> None:
    cluster.create(rolloutjob("src1", output={"uri": f"s3://{s3_bucket}/rollouts/src1/"}))
    out = f"s3://{s3_bucket}/datasets/sft1/"
    ds_uid = cluster.create(
        dataset("sft1", {"rolloutJobRef": "src1"}, {"uri": "s3://old/run/"}, output=out)
    )["metadata"]["uid"]

    def waiting() -> dict | None:
        status = cluster.status("Dataset", "sft1")
        return status if "waiting for RolloutJob src1" in status.get("message", "") else None

    status = wait_for(waiting, "the Dataset to wait for src1")
    assert status["phase"] == "Pending" and status["reason"] == "WaitingForSources"
    assert cluster.job("sft1-build") is None
    cluster.patch_spec("Dataset", "sft1", {"filters": {"minReward": 0.5}})  # allowed: not started

    cluster.start_pods("src1-gen")
    cluster.complete_job("src1-gen")
    cluster.wait_phase("RolloutJob", "src1", "Succeeded")
    builder = wait_for(lambda: cluster.job("sft1-build"), "the builder Job")
    (ref,) = builder["metadata"]["ownerReferences"]
    assert ref["uid"] == ds_uid and ref["kind"] == "Dataset"
    args = builder["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "build-dataset",
        "--spec",
        "/etc/gymops/spec.json",
        "--source-uri",
        f"s3://{s3_bucket}/rollouts/src1/",
    ]

    spec = json.loads(
        cluster.core.read_namespaced_config_map("sft1-spec", cluster.namespace).data["spec.json"]
    )
    assert spec["spec"]["filters"]["minReward"] == 0.5
    assert "SpecAccepted" not in {
        c["type"] for c in cluster.status("Dataset", "sft1")["conditions"]
    }
    cluster.patch_spec("Dataset", "sft1", {"filters": {"minReward": 0.9}})  # refused: building
    wait_for(
        lambda: "SpecChangeRefused" in cluster.event_reasons("sft1"), "the refusal of the change"
    )

    cluster.start_pods("sft1-build")
    cluster.wait_phase("Dataset", "sft1", "Running")
    result = {
        "counts": {"input": 40, "kept": 30, "dropped": {"low_reward": 10}},
        "splits": {"train": 28, "validation": 2},
        "files": [f"{out}train/part-00000.jsonl"],
        "card": f"{out}README.md",
        "seconds": 1.5,
    }
    boto3.client("s3", endpoint_url=s3_env).put_object(
        Bucket=s3_bucket, Key="datasets/sft1/_DATASET.json", Body=json.dumps(result).encode()
    )
    cluster.complete_job("sft1-build")
    status = cluster.wait_phase("Dataset", "sft1", "Succeeded")
    assert status["counts"] == result["counts"]
    assert status["splits"] == result["splits"]
    assert status["files"] == result["files"] and status["card"] == result["card"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Complete"] == "True"


def test_dataset_fails_when_its_source_fails(cluster: Cluster, operator: Operator) -> None:
    cluster.create(rolloutjob("src2"))
    cluster.create(dataset("sft2", {"rolloutJobRef": "src2"}, output="s3://bucket/d/"))
    cluster.start_pods("src2-gen")
    cluster.fail_job("src2-gen", "BackoffLimitExceeded", "Job has reached the backoff limit", "0")
    cluster.wait_phase("RolloutJob", "src2", "Failed")
    status = cluster.wait_phase("Dataset", "sft2", "Failed")
    assert status["reason"] == "SourceFailed"
    assert "source RolloutJob src2 failed" in status["message"]
    assert cluster.job("sft2-build") is None


def test_dataset_names_a_missing_source(cluster: Cluster, operator: Operator) -> None:
    cluster.create(dataset("sft3", {"rolloutJobRef": "nope"}, output="s3://bucket/d/"))

    def missing() -> dict | None:
        status = cluster.status("Dataset", "sft3")
        return status if status.get("reason") == "SourceNotFound" else None

    status = wait_for(missing, "SourceNotFound")
    assert status["phase"] == "Pending" and "RolloutJob nope not found" in status["message"]

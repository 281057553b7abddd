"""Datasets wait for their RolloutJobs, then one real builder pod writes the dataset."""

from __future__ import annotations

import json
from typing import Any

import boto3
from clusterkit import (
    GROUP,
    VERSION,
    Cluster,
    Operator,
    World,
    wait_for,
)


def dataset(name: str, *sources: dict[str, str], output: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {
            "sources": list(sources),
            "kind": "sft",
            "format": "trl",
            "output": {"uri": output},
            **spec,
        },
    }


def lines_of(world: World, uri: str) -> int:
    """How many JSON lines the object at `uri` holds."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=world.s3_url, region_name="us-east-1")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return sum(1 for line in body.splitlines() if line.strip())


def test_dataset_waits_for_its_rolloutjob_then_a_real_builder_writes_it(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    # src1 cannot finish (6 answers of 5 s per shard) before the Dataset is seen waiting and
    # patched, however slow the machine is; the stub answers at once after the patch.
    world.stub.config.latency = 5.0
    cluster.create(world.rolloutjob("src1", tasks=6, sampling={"numRepeats": 2, "concurrency": 1}))
    out = f"s3://{world.bucket}/datasets/sft1/"
    ds_uid = cluster.create(dataset("sft1", {"rolloutJobRef": "src1"}, output=out, s3=world.s3()))[
        "metadata"
    ]["uid"]

    def waiting() -> dict | None:
        status = cluster.status("Dataset", "sft1")
        return status if "waiting for RolloutJob src1" in status.get("message", "") else None

    status = wait_for(waiting, "the Dataset to wait for src1")
    assert status["phase"] == "Pending" and status["reason"] == "WaitingForSources"
    assert cluster.job("sft1-build") is None
    cluster.patch_spec("Dataset", "sft1", {"filters": {"minReward": 0.5}})  # allowed: not started

    world.stub.config.latency = 0.0
    cluster.wait_phase("RolloutJob", "src1", "Succeeded", timeout=180)
    builder = wait_for(lambda: cluster.job("sft1-build"), "the builder Job")
    (ref,) = builder["metadata"]["ownerReferences"]
    assert ref["uid"] == ds_uid and ref["kind"] == "Dataset"
    spec = json.loads(
        cluster.core.read_namespaced_config_map("sft1-spec", cluster.namespace).data["spec.json"]
    )
    assert spec["spec"]["filters"]["minReward"] == 0.5

    status = cluster.wait_phase("Dataset", "sft1", "Succeeded", timeout=180)
    assert {c["type"]: c["status"] for c in status["conditions"]}["Complete"] == "True"
    counts = status["counts"]
    assert counts["input"] == 12
    assert counts["kept"] == 6  # the stub is right for half the repeats
    assert counts["kept"] + sum(counts["dropped"].values()) == counts["input"]
    assert sum(status["splits"].values()) == counts["kept"]
    assert status["card"].startswith(out)
    assert (
        sum(lines_of(world, f) for f in status["files"] if f.endswith(".jsonl")) == counts["kept"]
    )


def test_dataset_fails_when_its_source_fails(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    bad_input = {"uri": f"s3://{world.bucket}/no/such/tasks.jsonl"}
    cluster.create(world.rolloutjob("src2", parallelism=1, input=bad_input))
    cluster.create(dataset("sft2", {"rolloutJobRef": "src2"}, output=f"s3://{world.bucket}/d/"))
    cluster.wait_phase("RolloutJob", "src2", "Failed", timeout=120)
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


def test_a_dataset_that_keeps_nothing_fails_at_once_naming_why(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    cluster.create(world.rolloutjob("src4", tasks=3, sampling={"numRepeats": 2}))
    out = f"s3://{world.bucket}/datasets/none4/"
    strict = {"minReward": 2.0}  # rewards are 0 or 1
    cluster.create(
        dataset("none4", {"rolloutJobRef": "src4"}, output=out, s3=world.s3(), filters=strict)
    )
    status = cluster.wait_phase("Dataset", "none4", "Failed", timeout=240)
    assert "0 rows kept of 6 rollouts" in status["message"], status
    # exit 2 fails the builder Job by its podFailurePolicy: no retry of a build that cannot change
    assert len(cluster.pods_of("none4-build")) == 1

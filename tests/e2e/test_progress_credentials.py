"""Progress is read with the RolloutJob's own S3 credentials, and a read error shows in status.

The operator runs with an S3 endpoint but no credentials of its own; the job names a Secret
holding the key pair. Its progress must reach status all the same, and a job whose Secret is
missing must say so in a condition and in status.message, not only in the operator's log.
"""

from __future__ import annotations

import base64
from pathlib import Path

import boto3
import pytest
from clusterkit import Cluster, Operator, rolloutjob, wait_for

from gym_operator.storage.manifest import ShardManifest, write_manifest
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri

BUCKET = "job-only-creds"


@pytest.fixture
def operator_env(moto_server: str, tmp_path: Path) -> dict[str, str]:
    """The operator knows the endpoint, but has no S3 credentials anywhere."""
    return {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _commit_progress(endpoint: str, output: str) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="job-key",
        aws_secret_access_key="job-secret",
    )
    s3.create_bucket(Bucket=BUCKET)
    storage = Storage(
        S3Settings(endpoint_url=endpoint, access_key_id="job-key", secret_access_key="job-secret")
    )
    manifest = ShardManifest(
        shard=0, num_shards=1, job_digest="sha256:x", num_repeats=2, completed=3, failed=1
    )
    write_manifest(storage, parse_uri(output), manifest)
    storage.close()


def _secret(cluster: Cluster, name: str) -> None:
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    cluster.core.create_namespaced_secret(
        cluster.namespace,
        {
            "metadata": {"name": name},
            "data": {
                "AWS_ACCESS_KEY_ID": encode("job-key"),
                "AWS_SECRET_ACCESS_KEY": encode("job-secret"),
            },
        },
    )


def _condition(status: dict, type_: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), None)


def test_progress_comes_from_a_job_whose_credentials_only_the_job_has(
    cluster: Cluster, operator: Operator, moto_server: str
) -> None:
    output = f"s3://{BUCKET}/rollouts/own/"
    _commit_progress(moto_server, output)
    _secret(cluster, "job-s3")
    s3 = {"endpointURL": moto_server, "credentialsSecretRef": {"name": "job-s3"}}
    cluster.create(rolloutjob("own", parallelism=1, s3=s3, output={"uri": output}))
    cluster.wait_phase("RolloutJob", "own", "Pending")

    def counted() -> dict | None:
        status = cluster.status("RolloutJob", "own")
        return status if (status.get("progress") or {}).get("completed") == 3 else None

    status = wait_for(counted, "progress read with the job's own credentials", timeout=60)
    assert status["progress"]["failed"] == 1
    assert _condition(status, "ProgressReadable") is None
    assert "job-secret" not in operator.log()


def test_a_missing_secret_shows_in_a_condition_and_the_message(
    cluster: Cluster, operator: Operator, moto_server: str
) -> None:
    s3 = {"endpointURL": moto_server, "credentialsSecretRef": {"name": "absent"}}
    cluster.create(rolloutjob("nosecret", parallelism=1, s3=s3))
    cluster.wait_phase("RolloutJob", "nosecret", "Pending")

    def flagged() -> dict | None:
        status = cluster.status("RolloutJob", "nosecret")
        cond = _condition(status, "ProgressReadable")
        return status if cond and cond["status"] == "False" else None

    status = wait_for(flagged, "the ProgressReadable condition", timeout=60)
    cond = _condition(status, "ProgressReadable")
    assert cond is not None and cond["reason"] == "ProgressUnreadable"
    assert "Secret" in cond["message"] and "absent" in cond["message"]
    assert "does not exist" in status["message"]

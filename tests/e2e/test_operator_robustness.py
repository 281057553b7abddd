"""The operator survives restarts; the real API server refuses bad specs and serves what
kubectl applies, with the printer columns and `kubectl explain` of the CRDs."""

from __future__ import annotations

import re

import yaml
from clusterkit import Cluster, Operator, World, rolloutjob, wait_for


def test_operator_killed_mid_run_resumes_without_duplicates(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    world.stub.config.latency = 0.5
    uid = cluster.create(
        world.rolloutjob("restart1", sampling={"numRepeats": 2, "concurrency": 1})
    )["metadata"]["uid"]
    cluster.wait_phase("RolloutJob", "restart1", "Running")
    operator.kill()
    world.stub.config.latency = 0.0
    wait_for(
        lambda: (cluster.job("restart1-gen") or {}).get("status", {}).get("succeeded") == 2,
        "the Job to complete while the operator is down",
        timeout=180,
    )
    operator.start()
    status = cluster.wait_phase("RolloutJob", "restart1", "Succeeded")
    assert status["completionTime"]
    assert cluster.creations("jobs", "restart1-gen") == 1
    assert cluster.creations("configmaps", "restart1-spec") == 1
    children = cluster.children(uid)
    assert len(children["Job"]) == 1 and len(children["ConfigMap"]) == 1
    assert 'gymops_operator_children_created_total{child="Job"}' not in operator.metrics()


def test_the_api_server_refuses_a_bad_spec_naming_the_field(cluster: Cluster, tmp_path) -> None:
    cases = [
        ({"parallelism": 0}, "spec.parallelism: Invalid value: 0"),
        ({"sampling": {"numRepeat": 2}}, 'unknown field "spec.sampling.numRepeat"'),
    ]
    for change, named in cases:
        manifest = tmp_path / "bad.yaml"
        manifest.write_text(yaml.safe_dump(rolloutjob("bad1", **change)))
        applied = cluster.kubectl("apply", "-f", str(manifest))
        assert applied.returncode != 0
        assert named in applied.stderr, applied.stderr
        assert not cluster.exists("RolloutJob", "bad1")


def test_kubectl_apply_creates_a_served_rolloutjob_with_live_columns(
    cluster: Cluster, operator: Operator, world: World, tmp_path
) -> None:
    world.stub.config.latency = 1.0
    body = world.rolloutjob("applied1", parallelism=3, sampling={"numRepeats": 2, "concurrency": 1})
    manifest = tmp_path / "rj.yaml"
    manifest.write_text(yaml.safe_dump(body))
    applied = cluster.kubectl("apply", "-f", str(manifest))  # with kubectl's schema validation
    assert applied.returncode == 0, applied.stderr
    assert "rolloutjob.gymops.dev/applied1 created" in applied.stdout
    job = wait_for(lambda: cluster.job("applied1-gen"), "the generator Job")
    assert job["spec"]["completions"] == 3

    def live_row() -> list[str] | None:
        table = cluster.kubectl("get", "rj", "applied1").stdout.splitlines()
        if len(table) != 2:
            return None
        row = table[1].split()
        done = re.fullmatch(r"(\d+)/8", row[2])
        return row if row[1] == "Running" and done and int(done[1]) > 0 else None

    header = cluster.kubectl("get", "rj", "applied1").stdout.splitlines()[0]
    assert header.split() == ["NAME", "PHASE", "PROGRESS", "ROLLOUTS/S", "REWARD", "AGE"]
    row = wait_for(live_row, "a Running row with progress", timeout=120)
    assert row[0] == "applied1"
    listed = cluster.kubectl("get", "gymops", "-o", "name")
    assert "rolloutjob.gymops.dev/applied1" in listed.stdout, listed.stderr


def undescribed(schema: dict, path: str) -> list[str]:
    """Fields under `schema` without a description (what `kubectl explain` would show empty)."""
    missing = []
    for name, sub in (schema.get("properties") or {}).items():
        here = f"{path}.{name}"
        if not sub.get("description"):
            missing.append(here)
        missing += undescribed(sub, here)
    if isinstance(schema.get("items"), dict):
        missing += undescribed(schema["items"], f"{path}[]")
    return missing


def test_kubectl_explain_describes_every_field(cluster: Cluster) -> None:
    document = cluster._raw("GET", "/openapi/v3/apis/gymops.dev/v1alpha1")
    schemas = document["components"]["schemas"]
    for kind in ("RolloutJob", "Dataset"):
        schema = schemas[f"dev.gymops.v1alpha1.{kind}"]
        for part in ("spec", "status"):
            assert undescribed(schema["properties"][part], f"{kind}.{part}") == []
        explained = cluster.kubectl("explain", f"{kind.lower()}.spec", "--recursive")
        assert explained.returncode == 0, explained.stderr
        assert "FIELDS:" in explained.stdout
    sampling = cluster.kubectl("explain", "rolloutjob.spec.sampling.numRepeats")
    assert "DESCRIPTION:" in sampling.stdout and "<empty>" not in sampling.stdout


def test_a_namespaced_operator_leaves_other_namespaces_alone(
    cluster: Cluster, operator: Operator, namespace_factory
) -> None:
    elsewhere = namespace_factory()
    other = rolloutjob("other1")
    cluster.custom.create_namespaced_custom_object(
        "gymops.dev", "v1alpha1", elsewhere, "rolloutjobs", other
    )
    cluster.create(rolloutjob("mine1", template={"nodeSelector": {"gymops.dev/nowhere": "x"}}))
    cluster.wait_phase("RolloutJob", "mine1", "Pending")
    theirs = cluster.custom.get_namespaced_custom_object(
        "gymops.dev", "v1alpha1", elsewhere, "rolloutjobs", "other1"
    )
    assert "status" not in theirs
    assert cluster.raw_list(f"/apis/batch/v1/namespaces/{elsewhere}/jobs") == []

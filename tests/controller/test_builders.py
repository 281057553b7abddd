"""Builders turn a RolloutJob/Dataset into hardened, secret-free Kubernetes manifests."""

from __future__ import annotations

import json

import pytest

from gym_operator.api import Dataset, RolloutJob, parse_resource
from gym_operator.controller import builders, podparts
from gym_operator.controller import constants as c
from gym_operator.controller.config import OperatorConfig
from gym_operator.errors import ExitCode

CFG = OperatorConfig()
JOB = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "math-run1", "namespace": "team-a"},
    "spec": {
        "input": {"uri": "s3://bucket/tasks.jsonl"},
        "policy": {
            "baseURL": "http://vllm:8000/v1",
            "model": "qwen3-8b",
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
        },
        "verifier": {"builtin": "math", "config": {"extraction": "boxed"}},
        "output": {"uri": "s3://bucket/rollouts/run1/"},
        "s3": {
            "endpointURL": "http://minio:9000",
            "region": "eu-west-1",
            "credentialsSecretRef": {"name": "s3-creds"},
        },
        "parallelism": 8,
        "backoffLimitPerIndex": 2,
        "template": {"image": "registry.local/gymops:dev", "nodeSelector": {"pool": "cpu"}},
    },
}


def rollout_job(**spec_changes: object) -> RolloutJob:
    body = json.loads(json.dumps(JOB))
    body["spec"].update(spec_changes)
    job = parse_resource(body)
    assert isinstance(job, RolloutJob)
    return job


def test_generator_job_is_indexed_with_one_pod_per_shard() -> None:
    manifest = builders.build_generator_job(rollout_job(), CFG)
    spec = manifest["spec"]
    assert manifest["apiVersion"] == "batch/v1" and manifest["kind"] == "Job"
    assert manifest["metadata"] == {
        "name": "math-run1-gen",
        "namespace": "team-a",
        "labels": podparts.labels_for(c.LABEL_ROLLOUTJOB, "math-run1", c.COMPONENT_GENERATOR),
    }
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 8
    assert spec["backoffLimitPerIndex"] == 2
    assert spec["suspend"] is False
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailIndex"
    # The worker's own exit codes for "retrying cannot help".
    assert rules[0]["onExitCodes"]["values"] == [ExitCode.BAD_SPEC, ExitCode.CONFLICT]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_generator_pod_runs_generate_against_the_verifier_service() -> None:
    container = builders.build_generator_job(rollout_job(), CFG)["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["image"] == "registry.local/gymops:dev"
    assert container["command"] == ["gymops"]
    assert container["args"] == [
        "generate",
        "--spec",
        "/etc/gymops/spec.json",
        "--verifier-url",
        "http://math-run1-verifier:8000",
        "--metrics-port",
        "9090",
    ]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    # Why a shard stopped shows in the pod status (and the RolloutJob's message), even for a
    # crash before the worker could write it.
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "terminationMessagePath" not in container  # the default the worker writes to


def test_secrets_are_passed_by_reference_only() -> None:
    manifest = builders.build_generator_job(rollout_job(), CFG)
    env = {e["name"]: e for e in manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OPENAI_API_KEY"] == {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
    }
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-creds",
        "key": "AWS_ACCESS_KEY_ID",
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert all("value" not in e for e in env.values() if e["name"].startswith("AWS_S"))


@pytest.mark.parametrize(
    "build",
    [
        lambda: builders.build_generator_job(rollout_job(), CFG),
        lambda: builders.build_verifier_deployment(rollout_job(), CFG),
        lambda: builders.build_verifier_deployment(
            rollout_job(verifier={"image": "nemo/gym-server:1", "port": 9000}), CFG
        ),
    ],
)
def test_pods_are_hardened(build: object) -> None:
    pod = build()["spec"]["template"]["spec"]  # type: ignore[operator]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    for container in pod["containers"]:
        sec = container["securityContext"]
        assert sec["allowPrivilegeEscalation"] is False
        assert sec["readOnlyRootFilesystem"] is True
        assert sec["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_builtin_verifier_runs_our_image_with_its_config() -> None:
    job = rollout_job()
    deployment = builders.build_verifier_deployment(job, CFG)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["verify-server", "--verifier", "math"]
    assert "@/etc/gymops/verifier.json" in container["args"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    service = builders.build_verifier_service(job, CFG)
    assert service["spec"]["selector"] == selector
    assert service["metadata"]["name"] == "math-run1-verifier"
    configmap = builders.build_spec_configmap(job)
    assert json.loads(configmap["data"]["verifier.json"]) == {"extraction": "boxed"}


def test_image_verifier_uses_the_users_image_and_port() -> None:
    job = rollout_job(verifier={"image": "nemo/gym-server:1", "port": 9000, "replicas": 3})
    deployment = builders.build_verifier_deployment(job, CFG)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nemo/gym-server:1"
    assert deployment["spec"]["replicas"] == 3
    assert builders.verifier_url(job, CFG) == "http://math-run1-verifier:9000"


def test_url_verifier_needs_no_server() -> None:
    job = rollout_job(verifier={"url": "http://judge.example:8000"})
    assert not builders.needs_verifier_server(job)
    args = builders.build_generator_job(job, CFG)["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    assert args[args.index("--verifier-url") + 1] == "http://judge.example:8000"


def test_spec_configmap_holds_the_resource_without_status() -> None:
    configmap = builders.build_spec_configmap(rollout_job())
    spec = json.loads(configmap["data"]["spec.json"])
    assert spec["kind"] == "RolloutJob"
    assert spec["metadata"] == {"name": "math-run1", "namespace": "team-a"}
    assert spec["spec"]["parallelism"] == 8
    assert parse_resource(spec).metadata.name == "math-run1"


def test_suspend_carries_to_the_job() -> None:
    assert builders.build_generator_job(rollout_job(suspend=True), CFG)["spec"]["suspend"] is True


def test_long_names_stay_within_a_dns_label() -> None:
    name = "x" * 70
    assert len(c.generator_job_name(name)) <= 63
    assert c.generator_job_name(name) != c.generator_job_name("x" * 69)
    assert c.generator_job_name(name).endswith("-gen")


def test_dataset_builder_reads_resolved_sources() -> None:
    body = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "math-sft", "namespace": "team-a"},
        "spec": {
            "sources": [{"rolloutJobRef": "math-run1"}],
            "kind": "sft",
            "format": "trl",
            "output": {"uri": "s3://bucket/datasets/math-sft/"},
        },
    }
    dataset = parse_resource(body)
    assert isinstance(dataset, Dataset)
    job = builders.build_dataset_job(dataset, ["s3://bucket/rollouts/run1/"], CFG)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["metadata"]["name"] == "math-sft-build"
    assert container["args"] == [
        "build-dataset",
        "--spec",
        "/etc/gymops/spec.json",
        "--source-uri",
        "s3://bucket/rollouts/run1/",
    ]
    assert container["image"] == CFG.worker.image


def test_operator_reads_the_result_file_the_builder_writes() -> None:
    from gym_operator.controller.dataset import DATASET_RESULT_FILE
    from gym_operator.data.builder import RESULT_FILE

    assert DATASET_RESULT_FILE == RESULT_FILE


def every_child() -> list[dict]:
    job = rollout_job()
    image_job = rollout_job(verifier={"image": "nemo/gym-server:1", "port": 9000})
    dataset = parse_resource(
        {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "Dataset",
            "metadata": {"name": "ds", "namespace": "team-a"},
            "spec": {
                "sources": [{"rolloutJobRef": "math-run1"}],
                "kind": "sft",
                "format": "trl",
                "output": {"uri": "s3://b/d/"},
                "template": {"tolerations": [{"key": "gpu", "operator": "Exists"}]},
            },
        }
    )
    assert isinstance(dataset, Dataset)
    return [
        builders.build_spec_configmap(job),
        builders.build_verifier_deployment(job, CFG),
        builders.build_verifier_deployment(image_job, CFG),
        builders.build_verifier_service(job, CFG),
        builders.build_generator_job(job, CFG),
        builders.build_spec_configmap(dataset),
        builders.build_dataset_job(dataset, ["s3://b/r/"], CFG),
    ]


@pytest.mark.parametrize(
    "manifest", every_child(), ids=lambda m: f"{m['kind']}-{m['metadata']['name']}"
)
def test_children_pass_the_kubernetes_schema_strictly(manifest: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(manifest, "1.33", strict=True)


def test_a_generator_exiting_over_the_failure_policy_fails_the_whole_job() -> None:
    rules = builders.pod_failure_policy()["rules"]
    fail_job = [r for r in rules if r["action"] == "FailJob"]
    assert [r["onExitCodes"]["values"] for r in fail_job] == [[ExitCode.TOO_MANY_FAILURES]]

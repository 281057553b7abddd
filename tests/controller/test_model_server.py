"""policy.server becomes a hardened Deployment + Service; workers get the URL it resolves to."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gym_operator.api import RolloutJob, SpecError, parse_resource
from gym_operator.controller import builders, serverbuilders, serving
from gym_operator.controller import constants as c

SERVER: dict[str, Any] = {
    "image": "vllm/vllm-openai:v0.11.0",
    "model": "Qwen/Qwen3-8B",
    "resources": {"limits": {"nvidia.com/gpu": "1"}},
    "env": [{"name": "HF_TOKEN", "secretKeyRef": {"name": "hf", "key": "token"}}],
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "volumes": [
        {"name": "cache", "mountPath": "/models", "claimName": "model-cache"},
        {"name": "shm", "mountPath": "/dev/shm", "emptyDir": "Memory"},
    ],
    "startupTimeoutSeconds": 900,
}
BODY: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "qwen-math", "namespace": "team-a"},
    "spec": {
        "input": {"uri": "s3://bucket/tasks.jsonl"},
        "policy": {"server": SERVER},
        "verifier": {"builtin": "math"},
        "output": {"uri": "s3://bucket/out/"},
    },
}


def rollout_job(policy: dict[str, Any] | None = None, **meta: Any) -> RolloutJob:
    body = copy.deepcopy(BODY)
    if policy is not None:
        body["spec"]["policy"] = policy
    body["metadata"].update(meta)
    job = parse_resource(body)
    assert isinstance(job, RolloutJob)
    return job


def test_server_deployment_runs_vllm_on_the_gpu_pool_with_the_token_by_reference() -> None:
    manifest = serverbuilders.build_server_deployment(rollout_job())
    assert manifest["metadata"]["name"] == "qwen-math-server"
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "vllm/vllm-openai:v0.11.0"
    assert "command" not in container  # the image's entrypoint: vllm serve
    assert container["args"] == [
        "--model", "Qwen/Qwen3-8B", "--port", "8000", "--served-model-name", "Qwen/Qwen3-8B",
    ]  # fmt: skip
    assert container["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in (
        container["env"]
    )
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["restartPolicy"] == "Always"
    assert manifest["spec"]["selector"]["matchLabels"].items() <= (
        manifest["spec"]["template"]["metadata"]["labels"].items()
    )


def test_server_is_ready_only_when_the_openai_endpoint_answers() -> None:
    (container,) = serverbuilders.build_server_deployment(rollout_job())["spec"]["template"][
        "spec"
    ]["containers"]
    probe = container["readinessProbe"]
    assert probe["httpGet"] == {"path": "/v1/models", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_server_is_non_root_read_only_and_without_capabilities() -> None:
    pod = serverbuilders.build_server_deployment(rollout_job())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    # a writable HOME and /tmp, the model cache and shared memory
    assert {"name": "HOME", "value": "/tmp"} in container["env"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"tmp": "/tmp", "cache": "/models", "shm": "/dev/shm"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cache"]["persistentVolumeClaim"] == {"claimName": "model-cache"}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory"}


def test_custom_command_serves_llama_cpp() -> None:
    server = {
        "image": "ghcr.io/ggml-org/llama.cpp:server",
        "model": "smollm2",
        "command": ["llama-server"],
        "args": ["-m", "/models/smollm2.gguf", "--port", "8080", "--host", "0.0.0.0"],
        "port": 8080,
        "readinessPath": "/health",
    }
    job = rollout_job({"server": server})
    (container,) = serverbuilders.build_server_deployment(job)["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["command"] == ["llama-server"]
    assert container["args"][:2] == ["-m", "/models/smollm2.gguf"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    service = serverbuilders.build_server_service(job)
    assert service["spec"]["ports"][0]["port"] == 8080
    assert (
        service["spec"]["selector"]
        == (serverbuilders.build_server_deployment(job)["spec"]["selector"]["matchLabels"])
    )


def test_workers_read_the_managed_servers_url_and_model() -> None:
    job = rollout_job()
    configmap = builders.build_spec_configmap(job, serving.static_base_url(job))
    policy = json.loads(configmap["data"][c.SPEC_FILE])["spec"]["policy"]
    assert policy["baseURL"] == "http://qwen-math-server:8000/v1"
    assert policy["model"] == "Qwen/Qwen3-8B"
    assert "server" not in policy
    # the worker's own parser accepts what it is given
    parse_resource(json.loads(configmap["data"][c.SPEC_FILE]))


@pytest.mark.parametrize(
    ("ref", "url"),
    [
        ({"name": "vllm", "port": 8000}, "http://vllm:8000/v1"),
        ({"name": "vllm", "namespace": "team-a", "port": 80}, "http://vllm:80/v1"),
        (
            {"name": "llm-d", "namespace": "serving", "port": 8000, "path": "/api/v1"},
            "http://llm-d.serving.svc:8000/api/v1",
        ),
    ],
)
def test_endpoint_ref_service_resolves_to_its_dns_name(ref: dict[str, Any], url: str) -> None:
    job = rollout_job({"endpointRef": ref, "model": "m"})
    assert serving.static_base_url(job) == url
    assert not serving.generators_wait(job)


def test_endpoint_ref_inference_service_waits_for_its_status_url() -> None:
    job = rollout_job({"endpointRef": {"kind": "InferenceService", "name": "qwen"}, "model": "m"})
    ref = job.spec.policy.endpoint_ref
    assert ref is not None
    assert serving.static_base_url(job) is None and serving.generators_wait(job)
    assert serving.inference_service_url(ref, {"status": {}}) is None
    published = {"status": {"url": "http://qwen.team-a.example.com/"}}
    assert serving.inference_service_url(ref, published) == (
        "http://qwen.team-a.example.com/openai/v1"
    )


def test_a_policy_names_exactly_one_source() -> None:
    with pytest.raises(SpecError) as info:
        rollout_job({"server": SERVER, "baseURL": "http://vllm:8000/v1", "model": "m"})
    assert "set exactly one of policy.baseURL, policy.embedded, policy.server" in str(info.value)


def test_bad_server_fields_are_named() -> None:
    bad = {
        **SERVER,
        "replicas": 0,
        "volumes": [{"name": "tmp", "mountPath": "/x", "emptyDir": "Disk"}],
    }
    with pytest.raises(SpecError) as info:
        rollout_job({"server": bad})
    text = str(info.value)
    assert "spec.policy.server.replicas" in text
    assert "volume name tmp is taken" in text

"""Model servers on the real control plane: the operator's own (policy.server) and a Service
the user runs (policy.endpointRef). The node agent runs the server images as local processes."""

from __future__ import annotations

import json

import pytest
from clusterkit import Cluster, Operator, World, wait_for
from serverkit import (
    CRASH_IMAGE,
    CRASH_MESSAGE,
    LLAMA_IMAGE,
    STUB_ARGS,
    STUB_IMAGE,
    condition,
    deployment_exists,
    ensure_inference_service_api,
    llama_args,
    pod_stats,
    pods_with,
    register_images,
    run_stub_service,
    wait_verifier_ready,
)

from gym_operator.rollout.output import read_committed
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri

SERVER_PODS = "app.kubernetes.io/component=model-server"


@pytest.fixture(autouse=True)
def images(cluster: Cluster) -> None:
    register_images(cluster)


def stub_server(**extra: object) -> dict[str, object]:
    """policy.server running the stub model."""
    return {"server": {"image": STUB_IMAGE, "model": "stub", "args": STUB_ARGS, **extra}}


def rollouts(world: World, name: str) -> list[tuple[int, int]]:
    """(task, rollout) identities of the committed rollouts and failures."""
    settings = S3Settings(endpoint_url=world.s3_url, region="us-east-1")
    out = read_committed(Storage(settings), parse_uri(f"s3://{world.bucket}/rollouts/{name}/"))
    return [(r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts + out.failures]


def test_a_server_that_never_becomes_ready_fails_the_job_after_its_startup_timeout(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    body = world.rolloutjob(
        "oom", policy={"server": {"image": CRASH_IMAGE, "model": "m", "startupTimeoutSeconds": 20}}
    )
    cluster.create(body)
    pending = wait_for(
        lambda: (
            (s := cluster.status("RolloutJob", "oom")).get("phase") == "Pending"
            and condition(s, "ServerReady").get("status") == "False"
            and s
        ),
        "a pending job whose server is not ready",
        timeout=60,
    )
    assert pending["phase"] == "Pending"
    status = cluster.wait_phase("RolloutJob", "oom", "Failed", timeout=180)
    assert status["reason"] == "ServerStartupTimeout"
    assert status["message"].startswith("model server not ready after 20s: ")
    assert "exited with code 1" in status["message"]  # the pod's reason
    assert cluster.creations("jobs", "oom-gen") == 0  # no generator ever ran
    assert cluster.pods_of("oom-gen") == []
    wait_for(lambda: not deployment_exists(cluster, "oom-server"), "the server deleted")
    assert "ServerStartupTimeout" in cluster.event_reasons("oom")
    logs = cluster.kube.agent.logs(cluster.namespace)
    assert CRASH_MESSAGE in logs


def test_a_server_asking_for_a_gpu_no_node_has_says_so_while_pending(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    cluster.create(world.rolloutjob("gpu", policy=stub_server(resources=gpu)))

    def unschedulable() -> dict[str, object] | None:
        status = cluster.status("RolloutJob", "gpu")
        if status.get("reason") != "Unschedulable":
            return None
        return status

    status = wait_for(unschedulable, "status naming the missing GPU", timeout=90)
    assert status["phase"] == "Pending"
    assert "Insufficient nvidia.com/gpu" in str(status["message"])
    ready = condition(status, "ServerReady")
    assert (ready["status"], ready["reason"]) == ("False", "Unschedulable")
    assert cluster.job("gpu-gen") is None


def test_suspend_deletes_the_server_and_resume_finishes_exactly_once(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    slow = STUB_ARGS + ["--latency", "1.5"]
    body = world.rolloutjob(
        "pause",
        tasks=6,
        policy={"server": {"image": STUB_IMAGE, "model": "stub", "args": slow}},
        sampling={"numRepeats": 2, "concurrency": 1},
    )
    cluster.create(body)
    wait_for(
        lambda: (cluster.status("RolloutJob", "pause").get("progress") or {}).get("completed"),
        "first committed rollouts",
        timeout=180,
    )
    status = cluster.status("RolloutJob", "pause")
    assert condition(status, "ServerReady")["status"] == "True"
    cluster.patch_spec("RolloutJob", "pause", {"suspend": True})
    status = cluster.wait_phase("RolloutJob", "pause", "Suspended", timeout=60)
    wait_for(lambda: not deployment_exists(cluster, "pause-server"), "the server deleted")
    wait_for(lambda: not pods_with(cluster, SERVER_PODS), "the server's pods gone", timeout=60)
    wait_for(
        lambda: not [p for p in cluster.pods_of("pause-gen") if p["status"]["phase"] == "Running"],
        "no generator running",
        timeout=60,
    )
    assert condition(cluster.status("RolloutJob", "pause"), "ServerReady")["reason"] == (
        "ServerDeleted"
    )

    cluster.patch_spec("RolloutJob", "pause", {"suspend": False})
    status = cluster.wait_phase("RolloutJob", "pause", "Succeeded", timeout=300)
    done = rollouts(world, "pause")
    assert sorted(done) == sorted({(t, r) for t in range(6) for r in range(2)})  # once each
    assert status["progress"]["completed"] + status["progress"]["failed"] == 12
    assert cluster.creations("deployments", "pause-server") == 2  # started again on resume
    assert cluster.creations("jobs", "pause-gen") == 1
    wait_for(
        lambda: not deployment_exists(cluster, "pause-server"), "the server deleted at the end"
    )
    ready = condition(cluster.status("RolloutJob", "pause"), "ServerReady")
    assert (ready["status"], ready["reason"]) == ("False", "ServerDeleted")


def test_endpoint_ref_to_a_service_with_two_replicas_uses_both(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    run_stub_service(cluster, "stub-vllm", replicas=2)
    policy = {"endpointRef": {"name": "stub-vllm", "port": 8000}, "model": "stub"}
    # Created suspended, resumed once its verifier serves: this test is about the model's
    # replicas, not about generators that start beside a verifier still starting.
    cluster.create(world.rolloutjob("byo", tasks=12, policy=policy, suspend=True))
    wait_verifier_ready(cluster, "byo")
    cluster.patch_spec("RolloutJob", "byo", {"suspend": False})
    status = cluster.wait_phase("RolloutJob", "byo", "Succeeded", timeout=240)
    assert status["progress"]["completed"] + status["progress"]["failed"] == 24
    assert status["progress"]["completed"] > 0
    stub_pods = pods_with(cluster, "app=stub-vllm")
    assert len(stub_pods) == 2
    served = [pod_stats(cluster, pod)["requests"] for pod in stub_pods]
    assert all(count > 0 for count in served), served
    assert sum(served) >= 24
    assert world.stub.requests == 0  # nothing went to the test's own stub


def test_endpoint_ref_to_an_inference_service_waits_for_its_url(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    ensure_inference_service_api(cluster)
    run_stub_service(cluster, "stub-isvc", replicas=1)
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "qwen"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "huggingface"}}}},
    }
    custom = cluster.custom
    custom.create_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", cluster.namespace, "inferenceservices", isvc
    )
    policy = {"endpointRef": {"kind": "InferenceService", "name": "qwen", "path": "/v1"}}
    cluster.create(world.rolloutjob("kserve", tasks=2, policy={**policy, "model": "stub"}))
    status = wait_for(
        lambda: (
            (s := cluster.status("RolloutJob", "kserve")).get("reason") == "EndpointNotReady" and s
        ),
        "EndpointNotReady",
        timeout=60,
    )
    assert status["phase"] == "Pending" and "qwen" in status["message"]
    assert cluster.job("kserve-gen") is None
    wait_verifier_ready(cluster, "kserve")

    url = f"http://stub-isvc.{cluster.namespace}.svc:8000"
    custom.patch_namespaced_custom_object_status(
        "serving.kserve.io", "v1beta1", cluster.namespace, "inferenceservices", "qwen",
        {"status": {"url": url}},
    )  # fmt: skip
    status = cluster.wait_phase("RolloutJob", "kserve", "Succeeded", timeout=180)
    assert status["progress"]["completed"] > 0
    spec = cluster.core.read_namespaced_config_map("kserve-spec", cluster.namespace).data
    assert json.loads(spec["spec.json"])["spec"]["policy"]["baseURL"] == f"{url}/v1"


def test_the_real_model_as_a_managed_server_from_model_to_dataset(
    cluster: Cluster, operator: Operator, world: World
) -> None:
    pytest.importorskip("llama_cpp", reason="the embedded model needs the `local` extra")
    server = {
        "image": LLAMA_IMAGE,
        "model": "smollm2",
        "args": llama_args(),
        "resources": {"requests": {"cpu": "1"}},
        "startupTimeoutSeconds": 300,
    }
    body = world.rolloutjob(
        "smol",
        tasks=3,
        policy={"server": server},
        sampling={"numRepeats": 1, "concurrency": 2, "params": {"max_output_tokens": 48}},
        parallelism=1,
    )
    cluster.create(body)
    seen: set[str] = set()
    ready_when_generators_came: list[int] = []

    def finished() -> dict[str, object] | None:
        status = cluster.status("RolloutJob", "smol")
        seen.add(f"{status.get('phase')}/{status.get('reason')}")
        if not ready_when_generators_came and cluster.job("smol-gen") is not None:
            server = cluster.apps.read_namespaced_deployment("smol-server", cluster.namespace)
            ready_when_generators_came.append(server.status.ready_replicas or 0)
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = wait_for(finished, "the job to finish", timeout=600)
    assert status["phase"] == "Succeeded", status
    assert "Pending/ServerStarting" in seen or "Pending/ServerNotReady" in seen, seen
    assert ready_when_generators_came == [1]  # the generators waited for the server
    assert status["progress"]["completed"] == 3  # sampled from the model, each scored
    wait_for(lambda: not deployment_exists(cluster, "smol-server"), "the server deleted")
    ready = condition(cluster.status("RolloutJob", "smol"), "ServerReady")
    assert (ready["status"], ready["reason"]) == ("False", "ServerDeleted")

    dataset = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "smol-sft"},
        "spec": {
            "sources": [{"rolloutJobRef": "smol"}],
            "kind": "sft",
            "format": "trl",
            "filters": {"minReward": 0.0},
            "output": {"uri": f"s3://{world.bucket}/datasets/smol-sft/"},
            "s3": world.s3(),
        },
    }
    cluster.create(dataset)
    built = cluster.wait_phase("Dataset", "smol-sft", "Succeeded", timeout=240)
    assert built["counts"]["input"] == 3


def test_kubectl_explain_documents_every_server_field(cluster: Cluster) -> None:
    from gym_operator.api.serving import ServerSpec

    for field in ("server", "endpointRef"):
        done = cluster.kubectl("explain", f"rolloutjob.spec.policy.{field}")
        assert done.returncode == 0, done.stderr
    text = cluster.kubectl("explain", "rolloutjob.spec.policy.server").stdout
    for name, info in ServerSpec.model_fields.items():
        wire = info.alias or name
        assert f"  {wire}\t" in text or f"  {wire} " in text, wire
        assert (info.description or "").split()[0] in text, wire

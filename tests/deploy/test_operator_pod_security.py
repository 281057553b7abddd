"""The operator Deployment: one replica, Recreate, liveness probe, and a locked-down pod."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploykit import CI_VALUES, OVERLAYS, Manifest, one

from gym_operator.cli import build_parser
from gym_operator.controller.config import OperatorConfig

SOURCES = [
    "chart:default",
    *(f"chart:{p.stem}" for p in CI_VALUES),
    *(f"kustomize:{p.name}" for p in OVERLAYS),
]


@pytest.fixture(params=SOURCES)
def deployment(
    request: pytest.FixtureRequest,
    render: Callable[..., list[Manifest]],
    kustomize: Callable[[Path], list[Manifest]],
) -> Manifest:
    """The operator Deployment as the chart (per value set) or an overlay renders it."""
    where, name = request.param.split(":")
    if where == "kustomize":
        return one(kustomize(next(p for p in OVERLAYS if p.name == name)), "Deployment")
    values = next((p for p in CI_VALUES if p.stem == name), None)
    return one(render(values), "Deployment")


def test_single_replica_replaced_by_recreate(deployment: Manifest) -> None:
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_pod_runs_non_root_with_runtime_default_seccomp(deployment: Manifest) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "hostNetwork" not in pod and "hostPID" not in pod


def test_container_is_locked_down(deployment: Manifest) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc.get("privileged", False) is False


def test_tmp_is_a_writable_empty_dir(deployment: Manifest) -> None:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_liveness_probe_hits_kopf_healthz(deployment: Manifest) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[probe["port"]] == 8080
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]


def test_resources_are_bounded(deployment: Manifest) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]


def test_runs_gymops_operator(deployment: Manifest) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["gymops"]
    assert "operator" in container["args"]
    assert any(a.startswith("--metrics-port=") for a in container["args"])


def test_image_values_reach_the_pod(render: Callable[..., list[Manifest]]) -> None:
    values = next(p for p in CI_VALUES if p.stem == "production-values")
    pod = one(render(values), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"].startswith("registry.example.com/ml/gym-operator@sha256:")
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    env = {e["name"]: e for e in container["env"]}
    assert env["GYMOPS_WORKER_IMAGE"]["value"] == "registry.example.com/ml/gym-operator:0.1.0"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "gym-operator-s3"
    default = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert default["image"] == "ghcr.io/gymops/gym-operator:0.1.0"
    default_env = {e["name"]: e.get("value") for e in default["env"]}
    assert default_env["GYMOPS_WORKER_IMAGE"] == default["image"]


def test_metrics_service_targets_the_operator_port(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    service = one(objects, "Service")
    pod = one(objects, "Deployment")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 9090 and port["targetPort"] == "metrics"
    assert "--metrics-port=9090" in pod["spec"]["containers"][0]["args"]


def test_args_parse_with_the_gymops_cli(deployment: Manifest) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "operator"
    assert args.all_namespaces != bool(args.namespace)
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.metrics_port == ports.get("metrics", 0)


def test_environment_configures_the_operator(render: Callable[..., list[Manifest]]) -> None:
    values = next(p for p in CI_VALUES if p.stem == "production-values")
    (container,) = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"]
    cfg = OperatorConfig.from_env({e["name"]: e["value"] for e in container["env"] if "value" in e})
    assert cfg.worker.image == "registry.example.com/ml/gym-operator:0.1.0"
    assert cfg.worker.image_pull_policy == "IfNotPresent"
    assert (cfg.timers.reconcile_seconds, cfg.timers.progress_seconds) == (5, 15)
    assert cfg.s3.endpoint_url == "http://minio.minio.svc.cluster.local:9000"
    assert cfg.s3.region == "us-east-1"

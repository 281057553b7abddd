"""ServiceMonitor, PodMonitor and Grafana dashboard: rendered on request, aimed at real metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import yaml
from deploykit import CHART, CI_VALUES, EXAMPLES, MANIFESTS, Manifest, of_kind, one
from prometheus_client import REGISTRY

from gym_operator import metrics  # noqa: F401  (registers every gymops_ metric)
from gym_operator.api import RolloutJob
from gym_operator.controller import builders, constants
from gym_operator.controller.config import OperatorConfig

DASHBOARD = CHART / "files" / "dashboards" / "gym-operator.json"
MONITORING_KINDS = ("ServiceMonitor", "PodMonitor")


def monitoring_values() -> Path:
    return next(p for p in CI_VALUES if p.stem == "monitoring-values")


def exported_series() -> set[str]:
    """Every series name the gymops_ metrics export (with _total, _bucket, _sum, _count)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("gymops_")
        for suffix in suffixes.get(family.type, ("",))
    }


def test_nothing_from_prometheus_operator_by_default(render: Callable[..., list[Manifest]]) -> None:
    objects = render()
    for kind in MONITORING_KINDS:
        assert not of_kind(objects, kind)
    assert not [c for c in of_kind(objects, "ConfigMap") if "dashboard" in c["metadata"]["name"]]


def test_service_monitor_scrapes_the_operator_service(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render(monitoring_values())
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert service["spec"]["ports"][0]["port"] == 9191
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_pod_monitor_selects_generator_and_verifier_pods(
    render: Callable[..., list[Manifest]],
) -> None:
    monitor = one(render(monitoring_values()), "PodMonitor")
    selector = monitor["spec"]["selector"]
    assert selector["matchLabels"] == {constants.LABEL_MANAGED_BY: constants.MANAGED_BY}
    (expression,) = selector["matchExpressions"]
    assert expression["key"] == constants.LABEL_COMPONENT
    assert set(expression["values"]) == {
        constants.COMPONENT_GENERATOR,
        constants.COMPONENT_VERIFIER,
    }
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    operator_pod = one(render(monitoring_values()), "Deployment")["spec"]["template"]["metadata"]
    assert operator_pod["labels"].get(constants.LABEL_COMPONENT) not in expression["values"]


def test_pod_monitor_watches_only_the_served_namespaces(
    render: Callable[..., list[Manifest]],
) -> None:
    objects = render(
        sets=[
            "metrics.podMonitor.enabled=true",
            "rbac.scope=namespaces",
            "rbac.namespaces={team-a,team-b}",
        ]
    )
    assert one(objects, "PodMonitor")["spec"]["namespaceSelector"] == {
        "matchNames": ["team-a", "team-b"]
    }


def test_dashboard_configmap_holds_the_dashboard(render: Callable[..., list[Manifest]]) -> None:
    (configmap,) = [
        c
        for c in of_kind(render(monitoring_values()), "ConfigMap")
        if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["gym-operator.json"])
    assert dashboard == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_panels_cover_what_users_watch() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("rollouts per second", "completion", "reward", "failures", "latency", "flight"):
        assert topic in titles, topic


def test_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bgymops_[a-z_]+", expr)}
    assert used
    unknown = used - exported_series()
    assert not unknown, f"the dashboard queries metrics nobody exports: {sorted(unknown)}"


def test_kustomize_monitoring_overlay_has_monitors_and_dashboard(
    kustomize: Callable[[Path], list[Manifest]],
) -> None:
    objects = kustomize(MANIFESTS / "overlays" / "with-monitoring")
    for kind in MONITORING_KINDS:
        assert len(of_kind(objects, kind)) == 1
    (configmap,) = of_kind(objects, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["gym-operator.json"]) == json.loads(DASHBOARD.read_text())
    for kind in MONITORING_KINDS:
        assert not of_kind(kustomize(MANIFESTS / "base"), kind)


def worker_pods() -> dict[str, Manifest]:
    """Pod templates of the generator and the built-in verifier, as the operator builds them."""
    job = RolloutJob.model_validate(
        yaml.safe_load((EXAMPLES / "rolloutjob-sft.yaml").read_text(encoding="utf-8"))
    )
    cfg = OperatorConfig()
    return {
        constants.COMPONENT_GENERATOR: builders.build_generator_job(job, cfg)["spec"]["template"],
        constants.COMPONENT_VERIFIER: builders.build_verifier_deployment(job, cfg)["spec"][
            "template"
        ],
    }


def scraped_ports(monitor: Manifest, pod: Manifest) -> set[str]:
    """Endpoint ports of the PodMonitor that this pod exposes (if it matches the selector)."""
    selector = monitor["spec"]["selector"]
    labels = pod["metadata"]["labels"]
    if not selector["matchLabels"].items() <= labels.items():
        return set()
    for expression in selector["matchExpressions"]:
        if labels.get(expression["key"]) not in expression["values"]:
            return set()
    exposed = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    return exposed & {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}


def test_pod_monitor_scrapes_built_in_verifier_pods(render: Callable[..., list[Manifest]]) -> None:
    monitor = one(render(monitoring_values()), "PodMonitor")
    assert scraped_ports(monitor, worker_pods()[constants.COMPONENT_VERIFIER]) == {"http"}


def test_pod_monitor_scrapes_generator_pods(render: Callable[..., list[Manifest]]) -> None:
    monitor = one(render(monitoring_values()), "PodMonitor")
    assert scraped_ports(monitor, worker_pods()[constants.COMPONENT_GENERATOR]) == {"metrics"}

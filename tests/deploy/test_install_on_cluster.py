"""The chart, the kustomize overlays and the examples, installed into the real control plane;
the chart's operator then runs as a pod under its own ServiceAccount and RBAC."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster.fixtures import KubeCluster
from clusterkit import Cluster, World, wait_for
from deploykit import BIN, CHART, CI_VALUES, EXAMPLES, MANIFESTS, Manifest, run
from kubernetes import client

FORBIDDEN = re.compile(r"cannot (get|list|watch|create|patch|update|delete) resource")
"""An RBAC refusal in a log line (not a 403 for a namespace being deleted)."""
# Stand-ins for prometheus-operator's CRDs, so the monitoring objects have a kind to be.
MONITORING_KINDS = [("servicemonitors", "ServiceMonitor"), ("podmonitors", "PodMonitor")]


@pytest.fixture
def kubectl(kube: KubeCluster) -> Callable[..., Any]:
    """kubectl as the cluster admin."""

    def _kubectl(*args: str, stdin: str | None = None) -> Any:
        return run([str(BIN / "kubectl"), "--kubeconfig", str(kube.kubeconfig), *args], stdin=stdin)

    return _kubectl


def monitoring_crds(kube: KubeCluster) -> None:
    """Minimal ServiceMonitor and PodMonitor CRDs (once per session)."""
    ext = client.ApiextensionsV1Api(kube.api)
    for plural, kind in MONITORING_KINDS:
        body = {
            "metadata": {"name": f"{plural}.monitoring.coreos.com"},
            "spec": {
                "group": "monitoring.coreos.com",
                "names": {"plural": plural, "kind": kind},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                    "openAPIV3Schema": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}}}],
            },
        }  # fmt: skip
        try:
            ext.create_custom_resource_definition(body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    wait_for(lambda: kube_has(kube, "monitoring.coreos.com/v1"), "the monitoring CRDs", 60)


def kube_has(kube: KubeCluster, group_version: str) -> bool:
    group, _, version = group_version.partition("/")
    try:
        client.CustomObjectsApi(kube.api).get_api_resources(group, version)
    except client.ApiException:
        return False
    return True


def dry_run(kubectl: Callable[..., Any], objects: list[Manifest]) -> None:
    """Server-side dry run: the real API server validates every object (schema, RBAC escalation
    checks, admission) and stores nothing."""
    stream = yaml.safe_dump_all(objects)
    applied = kubectl("apply", "--dry-run=server", "-f", "-", stdin=stream)
    assert applied.returncode == 0, applied.stderr
    assert len(applied.stdout.splitlines()) == len(objects), applied.stdout


def without_namespaces(kubectl: Callable[..., Any], objects: list[Manifest]) -> list[Manifest]:
    """The objects but Namespaces; every namespace they name exists (created when missing)."""
    names = {o["metadata"].get("namespace") for o in objects} - {None}
    names |= {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    for name in names:
        kubectl("create", "namespace", name)
    return [o for o in objects if o["kind"] != "Namespace"]


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.stem if v else "default")
def test_every_chart_configuration_is_accepted_by_the_server(
    kube: KubeCluster,
    kubectl: Callable[..., Any],
    render: Callable[..., list[Manifest]],
    values: Path | None,
) -> None:
    monitoring_crds(kube)
    for name in ("team-a", "team-b"):  # watched by the namespaced CI values
        kubectl("create", "namespace", name)
    dry_run(kubectl, without_namespaces(kubectl, render(values)))


@pytest.mark.parametrize("overlay", ["base", "overlays/namespaced", "overlays/with-monitoring"])
def test_kustomize_overlays_are_accepted_by_the_server(
    kube: KubeCluster,
    kubectl: Callable[..., Any],
    kustomize: Callable[[Path], list[Manifest]],
    overlay: str,
) -> None:
    monitoring_crds(kube)
    dry_run(kubectl, without_namespaces(kubectl, kustomize(MANIFESTS / overlay)))


def test_examples_apply_and_read_back(kubectl: Callable[..., Any], namespace: str) -> None:
    objects = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    stream = yaml.safe_dump_all(objects)
    applied = kubectl("apply", "-n", namespace, "-f", "-", stdin=stream)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count(" created") == len(objects), applied.stdout
    again = kubectl("apply", "-n", namespace, "-f", "-", stdin=stream)
    # A Secret written with stringData reads back as data, so kubectl re-applies it each time.
    steady = [o for o in objects if o["kind"] != "Secret"]
    assert again.stdout.count(" unchanged") == len(steady), again.stdout
    listed = kubectl("get", "-n", namespace, "rolloutjobs,datasets", "-o", "name")
    assert len(listed.stdout.split()) == sum(
        o["kind"] in ("RolloutJob", "Dataset") for o in objects
    )


@pytest.fixture
def release(cluster: Cluster, world: World, kube: KubeCluster, helm: str) -> Iterator[Callable]:
    """`release(scope)`: `helm install` of the chart into the namespace; uninstalled after."""
    names: list[str] = []
    env_kube = ["--kubeconfig", str(kube.kubeconfig), "--namespace", cluster.namespace]

    def install(scope: str) -> str:
        name = f"gymops-{uuid.uuid4().hex[:6]}"
        sets = [
            "crds.install=false",  # the session's CRDs are in place already
            f"rbac.scope={scope}",
            "rbac.aggregateToDefaultRoles=false",
            "operator.reconcileSeconds=1",
            "operator.progressSeconds=1",
            f"s3.endpointURL={world.s3_url}",
            "s3.region=us-east-1",
            "s3.credentialsSecret=s3",
        ]
        args = [helm, "install", name, str(CHART), *env_kube, "--wait", "--timeout", "3m"]
        for item in sets:
            args += ["--set", item]
        done = run(args)
        assert done.returncode == 0, done.stderr
        names.append(name)
        return name

    yield install
    cluster.delete_resources()  # while the operator runs, to release its finalizers
    for name in names:
        run([helm, "uninstall", name, *env_kube, "--wait", "--timeout", "2m"])


def operator_pod_log(cluster: Cluster) -> str:
    return cluster.kube.agent.logs(cluster.namespace)


@pytest.mark.parametrize("scope", ["namespaces", "cluster"])
def test_the_charts_operator_runs_jobs_under_its_own_rbac(
    cluster: Cluster, world: World, release: Callable[[str], str], scope: str
) -> None:
    name = release(scope)
    (pod,) = [p for p in cluster.raw_list(f"/api/v1/namespaces/{cluster.namespace}/pods")]
    assert pod["spec"]["serviceAccountName"] == name + "-gym-operator" or pod["spec"][
        "serviceAccountName"
    ].startswith(name)
    cluster.create(world.rolloutjob("chart1", tasks=4))
    dataset = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "chart1-sft"},
        "spec": {
            "sources": [{"rolloutJobRef": "chart1"}],
            "kind": "sft",
            "format": "trl",
            "output": {"uri": f"s3://{world.bucket}/datasets/chart1/"},
            "s3": world.s3(),
        },
    }
    cluster.create(dataset)
    cluster.wait_phase("RolloutJob", "chart1", "Succeeded", timeout=240)
    status = cluster.wait_phase("Dataset", "chart1-sft", "Succeeded", timeout=180)
    assert status["counts"]["input"] == 8
    refused = [line for line in operator_pod_log(cluster).splitlines() if FORBIDDEN.search(line)]
    assert refused == []


def test_a_missing_verb_is_reported_in_status_and_events(
    cluster: Cluster, world: World, release: Callable[[str], str]
) -> None:
    name = release("namespaces")
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    (role,) = rbac.list_namespaced_role(cluster.namespace).items
    rules = cluster.api_client.sanitize_for_serialization(role.rules)
    for rule in rules:
        if rule["resources"] == ["jobs"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    rbac.patch_namespaced_role(role.metadata.name, cluster.namespace, {"rules": rules})
    cluster.create(world.rolloutjob("norbac", tasks=2))

    def reported() -> dict | None:
        status = cluster.status("RolloutJob", "norbac")
        return status if status.get("reason") == "Forbidden" else None

    try:
        status = wait_for(reported, "the missing permission in status", timeout=60)
    except AssertionError as exc:
        log = operator_pod_log(cluster)[-4000:]
        raise AssertionError(f"{exc}\noperator log:\n{log}") from None
    assert status["message"].startswith("the operator may not create Job: ")
    assert 'cannot create resource "jobs"' in status["message"]
    (event,) = [e for e in cluster.events("norbac") if e["reason"] == "Forbidden"][:1]
    assert event["type"] == "Warning" and "may not create Job" in event["message"]
    assert cluster.job("norbac-gen") is None and name

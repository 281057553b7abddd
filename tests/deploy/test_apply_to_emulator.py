"""`kubectl apply` of the rendered chart, an overlay and the examples, against the API emulator."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploykit import BIN, CI_VALUES, EXAMPLES, MANIFESTS, NAMESPACE, ROOT, Manifest, run

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import emulator as e2e  # the e2e tests' emulator, tests/e2e/emulator.py


class InstallEmulator(e2e.GymEmulator):
    """The e2e emulator, plus the kinds an install creates (service accounts, RBAC, monitors)."""

    def declare_builtins(self) -> None:
        super().declare_builtins()
        self.declare("", "v1", "serviceaccounts", "ServiceAccount", shortnames=["sa"])
        rbac = "rbac.authorization.k8s.io"
        self.declare(rbac, "v1", "clusterroles", "ClusterRole", namespaced=False)
        self.declare(rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False)
        self.declare(rbac, "v1", "roles", "Role")
        self.declare(rbac, "v1", "rolebindings", "RoleBinding")
        self.declare("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor")
        self.declare("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor")


class InstallEmulatorThread(e2e.EmulatorThread):
    """EmulatorThread serving an InstallEmulator."""

    emulator_class = InstallEmulator


def start(crds: Path, tmp_path: Path) -> tuple[InstallEmulatorThread, Callable[..., Any]]:
    thread = InstallEmulatorThread(crds).start()
    kubeconfig = thread.write_kubeconfig(tmp_path / "kubeconfig")

    def kubectl(*args: str, stdin: str | None = None) -> Any:
        return run([str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), *args], stdin=stdin)

    return thread, kubectl


@pytest.fixture
def empty_cluster(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """kubectl on an emulator without our CRDs (the install creates them)."""
    (tmp_path / "no-crds").mkdir()
    thread, kubectl = start(tmp_path / "no-crds", tmp_path)
    yield kubectl
    thread.stop()


@pytest.fixture
def installed_cluster(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """kubectl on an emulator serving our CRDs."""
    thread, kubectl = start(ROOT / "crds", tmp_path)
    yield kubectl
    thread.stop()


def namespaces(*names: str) -> str:
    return yaml.safe_dump_all(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]
    )


def apply_and_read_back(kubectl: Callable[..., Any], objects: list[Manifest]) -> None:
    """Apply (client-side, as GitOps tools and users do), read every object back, re-apply."""
    stream = yaml.safe_dump_all(objects)
    # --validate=false: kubectl's own validation downloads /openapi/v3, which the emulator does
    # not serve; the objects went through kubernetes-validate --strict in another test.
    applied = kubectl("apply", "--validate=false", "-f", "-", stdin=stream)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("created") == len(objects), applied.stdout
    read = kubectl("get", "-f", "-", "-o", "json", stdin=stream)
    assert read.returncode == 0, read.stderr
    items = json.loads(read.stdout)
    items = items.get("items", [items])
    assert sorted((i["kind"], i["metadata"]["name"]) for i in items) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in objects
    )
    again = kubectl("apply", "--validate=false", "-f", "-", stdin=stream)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("unchanged") == len(objects), again.stdout


def test_chart_default_install_is_accepted(
    empty_cluster: Callable[..., Any], render: Callable[..., list[Manifest]]
) -> None:
    assert (
        empty_cluster(
            "apply", "--validate=false", "-f", "-", stdin=namespaces(NAMESPACE)
        ).returncode
        == 0
    )
    apply_and_read_back(empty_cluster, render())


@pytest.mark.parametrize("stem", ["namespaced-values", "monitoring-values"])
def test_chart_ci_installs_are_accepted(
    empty_cluster: Callable[..., Any], render: Callable[..., list[Manifest]], stem: str
) -> None:
    values = next(p for p in CI_VALUES if p.stem == stem)
    stream = namespaces(NAMESPACE, "team-a", "team-b", "monitoring")
    assert empty_cluster("apply", "--validate=false", "-f", "-", stdin=stream).returncode == 0
    apply_and_read_back(empty_cluster, render(values))


def test_kustomize_namespaced_overlay_is_accepted(
    empty_cluster: Callable[..., Any], kustomize: Callable[[Path], list[Manifest]]
) -> None:
    apply_and_read_back(empty_cluster, kustomize(MANIFESTS / "overlays" / "namespaced"))


def test_examples_are_accepted_once_installed(installed_cluster: Callable[..., Any]) -> None:
    objects = [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]
    apply_and_read_back(installed_cluster, objects)
    listed = installed_cluster("get", "rolloutjobs,datasets", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.split()) == sum(
        o["kind"] in ("RolloutJob", "Dataset") for o in objects
    )

"""Fixtures of the e2e tests: the emulator over HTTP, a test namespace, the operator process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import ROOT, Cluster, Operator
from emulator import EmulatorThread


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    """A fresh Kubernetes API emulator serving our CRDs on 127.0.0.1."""
    thread = EmulatorThread(ROOT / "crds").start()
    yield thread
    thread.stop()


@pytest.fixture
def kubeconfig(emulator: EmulatorThread, tmp_path: Path) -> Path:
    """A kubeconfig pointing at the emulator."""
    return emulator.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def cluster(emulator: EmulatorThread, kubeconfig: Path) -> Cluster:
    """The official client on the emulator, in a fresh namespace."""
    return Cluster(emulator, kubeconfig, f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def operator_env(moto_server: str) -> dict[str, str]:
    """Environment of the operator process: S3 is the moto server on loopback, never AWS."""
    return {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }


@pytest.fixture
def operator(
    cluster: Cluster, kubeconfig: Path, tmp_path: Path, operator_env: dict[str, str]
) -> Iterator[Operator]:
    """`gymops operator --namespace <test namespace>` running against the emulator."""
    proc = Operator(kubeconfig, cluster.namespace, tmp_path / "operator.log", operator_env).start()
    yield proc
    proc.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the operator's log to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        proc = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(proc, Operator):
            report.sections.append(("operator log", proc.log()[-20000:]))

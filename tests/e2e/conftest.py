"""Fixtures of the e2e tests (from opfixtures) and the failure report of the operator and pods."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clusterkit import Cluster, Operator
from opfixtures import cluster, operator, operator_env, world  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the operator's log and the logs of the namespace's pods."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or not hasattr(item, "funcargs"):
        return
    proc = item.funcargs.get("operator")
    if isinstance(proc, Operator):
        report.sections.append(("operator log", proc.log()[-20000:]))
    where = item.funcargs.get("cluster")
    if isinstance(where, Cluster):
        report.sections.append(("pod logs", where.kube.agent.logs(where.namespace)[-20000:]))

"""Every exit code a worker can end with gets the podFailurePolicy action it is meant to get."""

from __future__ import annotations

from typing import Any

import pytest

from gym_operator.controller import builders
from gym_operator.controller import constants as c
from gym_operator.errors import ExitCode

INTENDED: dict[ExitCode, str | None] = {
    ExitCode.OK: None,
    ExitCode.ERROR: "Count",
    ExitCode.BAD_SPEC: "FailIndex",
    ExitCode.INTERRUPTED: "Count",
    ExitCode.CONFLICT: "FailIndex",
    ExitCode.ENDPOINT_DOWN: "Count",
    ExitCode.TOO_MANY_FAILURES: "FailJob",
}
"""What the Job controller should do with a generator pod ending so (None: it succeeded).

Count: the index is retried up to backoffLimitPerIndex; FailIndex: that shard fails at once
(retrying cannot help); FailJob: the whole Job fails (the job failed by its failurePolicy)."""


def action(policy: dict[str, Any], container: str, code: int, conditions: list[dict]) -> str:
    """The action Kubernetes takes on a failed pod: the first rule that matches, else Count."""
    for rule in policy["rules"]:
        on_codes = rule.get("onExitCodes")
        if on_codes is not None:
            if on_codes.get("containerName", container) != container:
                continue
            inside = code in on_codes["values"]
            if inside == (on_codes["operator"] == "In"):
                return str(rule["action"])
            continue
        wanted = {(p["type"], p["status"]) for p in rule.get("onPodConditions", [])}
        if wanted & {(cond["type"], cond["status"]) for cond in conditions}:
            return str(rule["action"])
    return "Count"


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda code: code.name)
def test_each_exit_code_gets_the_action_intended(code: ExitCode) -> None:
    assert code in INTENDED, f"ExitCode.{code.name} has no intended podFailurePolicy action"
    policy = builders.pod_failure_policy()
    if INTENDED[code] is None:
        named = [v for r in policy["rules"] for v in r.get("onExitCodes", {}).get("values", [])]
        assert int(code) not in named
        return
    assert action(policy, c.CONTAINER_GENERATOR, int(code), []) == INTENDED[code]


@pytest.mark.parametrize("code", [code for code in ExitCode if code], ids=lambda code: code.name)
def test_a_pod_stopped_by_a_disruption_never_counts_whatever_its_code(code: ExitCode) -> None:
    disrupted = [{"type": "DisruptionTarget", "status": "True"}]
    policy = builders.pod_failure_policy()
    expected = "Ignore" if INTENDED[code] == "Count" else INTENDED[code]
    assert action(policy, c.CONTAINER_GENERATOR, int(code), disrupted) == expected


def test_the_policy_names_plain_integers_kubernetes_accepts() -> None:
    for rule in builders.pod_failure_policy()["rules"]:
        values = rule.get("onExitCodes", {}).get("values", [])
        assert all(type(v) is int and v != 0 for v in values)


BUILDER_INTENDED: dict[ExitCode, str | None] = {
    ExitCode.OK: None,
    ExitCode.ERROR: "Count",
    ExitCode.BAD_SPEC: "FailJob",
    ExitCode.INTERRUPTED: "Count",
    ExitCode.CONFLICT: "Count",
    ExitCode.ENDPOINT_DOWN: "Count",
    ExitCode.TOO_MANY_FAILURES: "Count",
}
"""The same for the dataset builder's pod (one pod, retried up to backoffLimit): a spec it cannot
use fails the Job at once; the codes a builder never returns are counted like any failure."""


@pytest.mark.parametrize("code", list(ExitCode), ids=lambda code: code.name)
def test_each_exit_code_of_the_dataset_builder_gets_the_action_intended(code: ExitCode) -> None:
    assert code in BUILDER_INTENDED, f"ExitCode.{code.name} has no intended builder action"
    policy = builders.builder_failure_policy()
    if BUILDER_INTENDED[code] is None:
        named = [v for r in policy["rules"] for v in r.get("onExitCodes", {}).get("values", [])]
        assert int(code) not in named
        return
    assert action(policy, c.CONTAINER_BUILDER, int(code), []) == BUILDER_INTENDED[code]
    disrupted = [{"type": "DisruptionTarget", "status": "True"}]
    expected = "Ignore" if BUILDER_INTENDED[code] == "Count" else BUILDER_INTENDED[code]
    assert action(policy, c.CONTAINER_BUILDER, int(code), disrupted) == expected

"""status.viewerPath: set only for jobs in the namespace an installed viewer lists."""

from __future__ import annotations

from gym_operator.controller.config import OperatorConfig
from gym_operator.controller.viewerlink import viewer_path


def test_a_job_in_the_listed_namespace_gets_its_stable_path() -> None:
    assert viewer_path("team-a", "math-run1", "team-a") == "/rolloutjobs/team-a/math-run1"


def test_no_path_without_a_viewer_or_in_another_namespace() -> None:
    assert viewer_path("team-a", "math-run1", None) is None
    assert viewer_path("team-b", "math-run1", "team-a") is None


def test_the_listed_namespace_comes_from_the_environment_the_chart_sets() -> None:
    def listed(env: dict[str, str]) -> str | None:
        return OperatorConfig.from_env(env).viewer_namespace

    assert listed({"GYMOPS_VIEWER_NAMESPACE": "team-a"}) == "team-a"
    assert listed({"GYMOPS_VIEWER_NAMESPACE": " "}) is None
    assert listed({}) is None

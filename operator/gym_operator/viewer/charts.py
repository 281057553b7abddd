"""The overview's charts as SVG, drawn by the same matplotlib code as the dataset card's."""

from __future__ import annotations

from typing import Any

from gym_operator.data import plots
from gym_operator.viewer import stats

CHARTS = ("rewards", "pass_rates", "task_types", "throughput")


def draw(name: str, numbers: dict[str, Any], threshold: float) -> bytes:
    """One chart of the overview (`name` in CHARTS) from its numbers (stats.overview)."""
    if name == "rewards":
        low, high = numbers["reward"]["range"]
        return plots.histogram(
            numbers["reward"]["bins"] or [0] * stats.REWARD_BINS,
            low,
            high,
            title=f"Reward per verified rollout ({numbers['counts']['rollouts']})",
            xlabel="reward",
            ylabel="rollouts",
            fmt="svg",
        )
    if name == "pass_rates":
        return plots.histogram(
            numbers["tasksPassed"]["bins"],
            0.0,
            1.0,
            title=f"Pass rate per task ({numbers['counts']['tasks']} tasks)",
            xlabel=f"share of repeats with reward >= {threshold:g}",
            ylabel="tasks",
            fmt="svg",
        )
    if name == "task_types":
        types = [t for t in numbers["taskTypes"] if t["rollouts"]]
        return plots.bar_chart(
            [t["taskType"] for t in types],
            [t["passRate"] or 0.0 for t in types],
            title="Pass rate per task type",
            xlabel="task type",
            ylabel="pass rate",
            value_text=[f"{t['passRate'] or 0:.2f} of {t['rollouts']}" for t in types],
            fmt="svg",
        )
    flow = numbers["throughput"]
    rates, minutes = flow["perMinute"], flow["minutes"]
    if len(rates) < 8:  # a short job: a few labelled bars read better than a line
        width = 2 * minutes[0] if minutes else 1.0
        return plots.histogram(
            [round(r) for r in rates] or [0],
            0.0,
            width * max(len(rates), 1),
            title="Throughput",
            xlabel="minutes since the first rollout",
            ylabel="rollouts per minute",
            fmt="svg",
        )
    return plots.line_chart(
        minutes,
        rates,
        title="Throughput",
        xlabel="minutes since the first rollout",
        ylabel="rollouts per minute",
        fmt="svg",
    )

"""A run updates the gymops_* Prometheus metrics, with no per-task labels."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY
from rolloutkit import make_job, math_task, write_tasks

from gym_operator.rollout.runner import run_job
from gym_operator.testing.stub_model import StubModel


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_run_counts_rollouts_tokens_rewards_and_retries(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    before = {
        "completed": _value("gymops_rollouts_total", outcome="completed"),
        "retries": _value("gymops_retries_total", target="model", reason="http_5xx"),
        "rewards": _value("gymops_reward_count"),
        "tokens": _value("gymops_tokens_total", kind="completion"),
        "latency": _value("gymops_model_request_seconds_count"),
    }
    tasks = [math_task(0), math_task(1, "#fault:500x1")]
    job = make_job(
        tasks_uri=str(write_tasks(tmp_path / "t.jsonl", tasks)),
        output_uri=str(tmp_path / "out"),
        base_url=url,
    )
    await run_job(job.spec, shards=[0])
    assert _value("gymops_rollouts_total", outcome="completed") - before["completed"] == 8
    assert (
        _value("gymops_retries_total", target="model", reason="http_5xx") - before["retries"] == 4
    )
    assert _value("gymops_reward_count") - before["rewards"] == 8
    assert _value("gymops_tokens_total", kind="completion") > before["tokens"]
    assert _value("gymops_model_request_seconds_count") - before["latency"] == 12
    assert _value("gymops_model_requests_in_flight") == 0
    names = {m.name for m in REGISTRY.collect() if m.name.startswith("gymops_")}
    for metric in REGISTRY.collect():
        if metric.name.startswith("gymops_"):
            for sample in metric.samples:
                assert "task" not in " ".join(sample.labels), sample
    assert {
        "gymops_rollouts",
        "gymops_verifier_request_seconds",
        "gymops_concurrency_window",
    } <= names

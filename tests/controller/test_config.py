"""The operator's config: defaults, environment, command-line flags; frozen."""

from __future__ import annotations

import pydantic
import pytest

from gym_operator.cli import build_parser
from gym_operator.controller import entrypoint
from gym_operator.controller.config import OperatorConfig


def test_environment_overrides_defaults() -> None:
    cfg = OperatorConfig.from_env(
        {
            "GYMOPS_WORKER_IMAGE": "registry.local/gymops:1.2",
            "GYMOPS_RECONCILE_SECONDS": "2.5",
            "AWS_ENDPOINT_URL": "http://minio:9000",
            "AWS_REGION": "eu-west-1",
        }
    )
    assert cfg.worker.image == "registry.local/gymops:1.2"
    assert cfg.timers.reconcile_seconds == 2.5
    assert cfg.timers.progress_seconds == 30.0
    assert cfg.s3.endpoint_url == "http://minio:9000" and cfg.s3.region == "eu-west-1"
    with pytest.raises(pydantic.ValidationError):
        cfg.worker.image = "other"  # type: ignore[misc]


def test_operator_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GYMOPS_WORKER_IMAGE", raising=False)
    args = build_parser().parse_args(
        ["operator", "--namespace", "team-a", "--namespace", "team-b", "--metrics-port", "0"]
    )
    cfg = entrypoint.config_from_args(args)
    assert cfg.watch.namespaces == ("team-a", "team-b")
    assert not cfg.watch.all_namespaces
    assert cfg.metrics.port == 0
    assert cfg.metrics.liveness_url == "http://0.0.0.0:8080/healthz"
    wide = entrypoint.config_from_args(build_parser().parse_args(["operator", "--all-namespaces"]))
    assert wide.watch.all_namespaces and wide.watch.namespaces == ()


def test_status_reads_of_s3_use_the_one_config() -> None:
    from fakekube import FakeKube

    from gym_operator.api.common import S3Spec
    from gym_operator.controller.config import S3Settings
    from gym_operator.controller.runtime import Runtime

    cfg = OperatorConfig(
        s3=S3Settings(endpoint_url="http://minio:9000", region="eu-west-1", max_attempts=4)
    )
    rt = Runtime(cfg=cfg, kube=FakeKube())
    own = rt.s3_settings(None, "team-a")
    assert (own.endpoint_url, own.region, own.max_attempts) == ("http://minio:9000", "eu-west-1", 4)
    assert (own.connect_timeout, own.read_timeout) == (3.0, 10.0)
    job = rt.s3_settings(S3Spec(endpoint_url="http://other:9000"), "team-a")
    assert job.endpoint_url == "http://other:9000" and job.region == "eu-west-1"


def test_the_timer_interval_comes_from_the_config_given_at_registration() -> None:
    import kopf

    from gym_operator.controller import handlers

    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorConfig.from_env({"GYMOPS_RECONCILE_SECONDS": "2.5"}))
    timers = registry._spawning.get_all_handlers()
    assert sorted(t.id for t in timers) == ["dataset_timer", "rolloutjob_timer"]
    assert {t.interval for t in timers} == {2.5}

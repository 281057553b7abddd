"""The operator's settings: one frozen, grouped model, read once from flags and environment."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "GYMOPS_"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WorkerSettings(_Frozen):
    """The pods the operator creates."""

    image: str = Field(
        default="ghcr.io/gymops/gym-operator:0.1.0",
        description="Worker image when spec.template.image is unset; the operator's own image.",
    )
    image_pull_policy: str = Field(default="IfNotPresent", description="Default pull policy.")
    verifier_port: int = Field(
        default=8000, description="Port of built-in verifier servers (the verify-server default)."
    )
    generator_metrics_port: int = Field(
        default=9090,
        description="Port of each generator pod's /metrics (the PodMonitor scrapes the port "
        "named `metrics`); 0 disables it.",
    )
    builder_backoff_limit: int = Field(
        default=2, description="Retries of a dataset builder pod; the build is idempotent."
    )


class WatchSettings(_Frozen):
    """Which namespaces are served."""

    namespaces: tuple[str, ...] = Field(
        default=(), description="Namespaces (or kopf globs) to watch; empty with all=False: all."
    )
    all_namespaces: bool = Field(default=False, description="Serve the whole cluster.")


class TimerSettings(_Frozen):
    """How often status is refreshed."""

    reconcile_seconds: float = Field(
        default=10.0,
        description="Interval of the status timer: child Job and pod state, TTL. Seconds; "
        "10 keeps API load low for hundreds of resources while status stays fresh.",
    )
    progress_seconds: float = Field(
        default=30.0,
        description="Least interval between reads of the shard manifests in S3. Seconds; "
        "a job's progress need not be fresher than that, and each read costs one S3 GET per shard.",
    )


class S3Settings(_Frozen):
    """How the operator reads shard manifests and dataset results: fallbacks for what the
    resource's spec.s3 leaves unset, and the tuning of those reads."""

    endpoint_url: str | None = Field(default=None, description="S3 endpoint (AWS_ENDPOINT_URL).")
    region: str | None = Field(default=None, description="S3 region (AWS_REGION).")
    max_attempts: int = Field(
        default=2,
        ge=1,
        description="Attempts per S3 call. Few: a slow store must not stall status updates, and "
        "the next timer tick tries again anyway.",
    )
    connect_timeout_seconds: float = Field(
        default=3.0, gt=0, description="Seconds to connect to S3 (a status read, not a transfer)."
    )
    read_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Seconds to wait for an S3 answer (manifests are small)."
    )


class MetricsSettings(_Frozen):
    """The operator's own Prometheus endpoint and liveness probe."""

    port: int = Field(default=9090, description="Port of /metrics; 0 disables it.")
    liveness_url: str | None = Field(
        default="http://0.0.0.0:8080/healthz", description="kopf liveness endpoint."
    )


class OperatorConfig(_Frozen):
    """Everything the operator is configured with."""

    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    timers: TimerSettings = Field(default_factory=TimerSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    viewer_namespace: str | None = Field(
        default=None,
        description="Namespace the chart's rollout viewer lists (GYMOPS_VIEWER_NAMESPACE, set by "
        "the chart with viewer.enabled); its RolloutJobs get status.viewerPath. None: no viewer.",
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorConfig:
        """Build from `GYMOPS_*` variables (and AWS_* for S3); unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        worker: dict[str, object] = {}
        if env.get(f"{ENV_PREFIX}WORKER_IMAGE"):
            worker["image"] = env[f"{ENV_PREFIX}WORKER_IMAGE"]
        if env.get(f"{ENV_PREFIX}WORKER_IMAGE_PULL_POLICY"):
            worker["image_pull_policy"] = env[f"{ENV_PREFIX}WORKER_IMAGE_PULL_POLICY"]
        timers: dict[str, object] = {}
        if env.get(f"{ENV_PREFIX}RECONCILE_SECONDS"):
            timers["reconcile_seconds"] = float(env[f"{ENV_PREFIX}RECONCILE_SECONDS"])
        if env.get(f"{ENV_PREFIX}PROGRESS_SECONDS"):
            timers["progress_seconds"] = float(env[f"{ENV_PREFIX}PROGRESS_SECONDS"])
        s3 = S3Settings(
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        )
        return cls(
            worker=WorkerSettings.model_validate(worker),
            timers=TimerSettings.model_validate(timers),
            s3=s3,
            viewer_namespace=env.get(f"{ENV_PREFIX}VIEWER_NAMESPACE", "").strip() or None,
        )

    def with_flags(
        self,
        namespaces: list[str],
        all_namespaces: bool,
        liveness_url: str | None,
        metrics_port: int,
    ) -> OperatorConfig:
        """A copy with the command-line flags of `gymops operator` applied."""
        return self.model_copy(
            update={
                "watch": WatchSettings(namespaces=tuple(namespaces), all_namespaces=all_namespaces),
                "metrics": MetricsSettings(port=metrics_port, liveness_url=liveness_url),
            }
        )

"""What the operator makes once per process: its config, clients and per-resource memory.

Kept in kopf's memo by the startup handler and passed to the reconcile functions; no kopf here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gym_operator import metrics
from gym_operator.api import Phase
from gym_operator.api.common import S3Spec
from gym_operator.controller import kube, progress
from gym_operator.controller.config import OperatorConfig
from gym_operator.storage.store import S3Settings


@dataclass
class Runtime:
    """The config, the Kubernetes and S3 clients, and what the reconciles remember per uid."""

    cfg: OperatorConfig
    kube: kube.Kube
    stores: progress.StorageCache = field(default_factory=progress.StorageCache)
    samples: dict[str, progress.Sample] = field(default_factory=dict)
    last_read: dict[str, float] = field(default_factory=dict)
    read_errors: dict[str, str] = field(default_factory=dict)
    phases: dict[tuple[str, str], str] = field(default_factory=dict)

    def record_phase(self, kind: str, uid: str, phase: str | None) -> None:
        """Track the phase of a resource for the resources-by-phase gauge."""
        if phase is None:
            self.phases.pop((kind, uid), None)
        else:
            self.phases[(kind, uid)] = phase
        for name in Phase:
            count = sum(1 for (k, _), p in self.phases.items() if k == kind and p == name)
            metrics.OPERATOR_RESOURCES.labels(kind=kind, phase=name.value).set(count)

    def forget(self, kind: str, uid: str) -> None:
        """Drop what is remembered about a deleted resource."""
        self.record_phase(kind, uid, None)
        self.samples.pop(uid, None)
        self.last_read.pop(uid, None)
        self.read_errors.pop(uid, None)

    def s3_settings(self, spec: S3Spec | None, namespace: str) -> S3Settings:
        """How to read a resource's output: its spec.s3, else the operator's S3 settings, tuned
        for status reads, with the key pair of spec.s3.credentialsSecretRef when it names one
        (ProgressUnreadable when that Secret is unusable)."""
        tuned = S3Settings(
            endpoint_url=(spec.endpoint_url if spec else None) or self.cfg.s3.endpoint_url,
            region=(spec.region if spec else None) or self.cfg.s3.region,
            max_attempts=self.cfg.s3.max_attempts,
            connect_timeout=self.cfg.s3.connect_timeout_seconds,
            read_timeout=self.cfg.s3.read_timeout_seconds,
        )
        return progress.job_s3_settings(tuned, spec, namespace, self._secret)

    def _secret(self, namespace: str, name: str) -> Mapping[str, object] | None:
        return self.kube.get("Secret", namespace, name)

    def close(self) -> None:
        """Close the clients."""
        self.stores.close()
        self.kube.close()

"""Shared building blocks of the gymops.dev resources: base model, references, S3, pod template."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

API_GROUP = "gymops.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"


class Phase(StrEnum):
    """Where a RolloutJob or Dataset is in its life (`status.phase`)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"

    def is_terminal(self) -> bool:
        """Whether the resource has finished: it never leaves this phase on its own."""
        return self in (Phase.SUCCEEDED, Phase.FAILED)


PHASES: tuple[str, ...] = tuple(phase.value for phase in Phase)
TERMINAL_PHASES: frozenset[str] = frozenset(phase.value for phase in Phase if phase.is_terminal())


def cel(rule: str, message: str) -> dict[str, str]:
    """One CEL rule for the CRD schema (`x-kubernetes-validations`)."""
    return {"rule": rule, "message": message}


class ApiModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in YAML or the Kubernetes API (camelCase, no unset nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SecretKeyRef(ApiModel):
    """A key inside a Kubernetes Secret in the resource's namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret's data.")


class S3CredentialsRef(ApiModel):
    """A Kubernetes Secret holding S3 credentials."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    access_key_id_key: str = Field(
        default="AWS_ACCESS_KEY_ID", description="Key of the access key id in the Secret."
    )
    secret_access_key_key: str = Field(
        default="AWS_SECRET_ACCESS_KEY", description="Key of the secret access key in the Secret."
    )


class S3Spec(ApiModel):
    """How to reach S3; unset fields fall back to the standard AWS environment variables."""

    endpoint_url: str | None = Field(
        default=None,
        alias="endpointURL",
        description="S3 endpoint, e.g. http://minio:9000; unset means AWS or AWS_ENDPOINT_URL.",
    )
    region: str | None = Field(default=None, description="S3 region, e.g. us-east-1.")
    credentials_secret_ref: S3CredentialsRef | None = Field(
        default=None,
        description="Secret with the access key pair; unset uses the pod's identity or env.",
    )


class Toleration(ApiModel):
    """A Kubernetes toleration (same fields as core/v1 Toleration)."""

    key: str | None = Field(default=None, description="Taint key the toleration applies to.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default Equal)."
    )
    value: str | None = Field(default=None, description="Taint value for the Equal operator.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


class ResourceRequirements(ApiModel):
    """CPU and memory requests and limits, as Kubernetes quantities."""

    requests: dict[str, str] | None = Field(default=None, description="e.g. {cpu: 500m}.")
    limits: dict[str, str] | None = Field(default=None, description="e.g. {memory: 1Gi}.")


class EnvVar(ApiModel):
    """An extra environment variable for worker pods: a plain value or a Secret reference."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.value) && has(self.secretKeyRef))",
                    "set value or secretKeyRef, not both",
                )
            ]
        }
    )

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(default=None, description="Plain value.")
    secret_key_ref: SecretKeyRef | None = Field(
        default=None,
        description="Take the value from a Secret (e.g. an LLM judge's API key); never copied.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.secret_key_ref is not None:
            raise ValueError("set value or secretKeyRef, not both")
        return self


class PodTemplate(ApiModel):
    """Settings applied to every worker pod the operator creates."""

    image: str | None = Field(
        default=None, description="Worker image; unset uses the operator's default image."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Image pull policy."
    )
    image_pull_secrets: list[str] | None = Field(
        default=None, description="Names of Secrets used to pull the image."
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the worker container."
    )
    node_selector: dict[str, str] | None = Field(default=None, description="Node selector.")
    tolerations: list[Toleration] | None = Field(default=None, description="Tolerations.")
    service_account_name: str | None = Field(
        default=None, description="Service account of the worker pods."
    )
    priority_class_name: str | None = Field(default=None, description="Priority class.")
    env: list[EnvVar] | None = Field(default=None, description="Extra environment variables.")
    labels: dict[str, str] | None = Field(default=None, description="Extra pod labels.")
    annotations: dict[str, str] | None = Field(default=None, description="Extra pod annotations.")


class Condition(ApiModel):
    """A status condition in the metav1.Condition shape."""

    type: str = Field(description="Condition type, e.g. Ready, Complete, Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The spec generation the condition was set for."
    )


class ResourceStatus(ApiModel):
    """Status fields every gymops.dev resource has (the KubeRay/metav1 shape)."""

    phase: Phase | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed or Suspended."
    )
    reason: str | None = Field(default=None, description="CamelCase reason for the phase.")
    message: str | None = Field(default=None, description="Why the resource is where it is.")
    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    start_time: str | None = Field(default=None, description="When the work started.")
    completion_time: str | None = Field(default=None, description="When the work finished.")
    conditions: list[Condition] | None = Field(default=None, description="Status conditions.")


class ObjectMeta(BaseModel):
    """The part of Kubernetes metadata that local mode reads; the rest is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(default="local", description="Resource name.")
    namespace: str | None = Field(default=None, description="Resource namespace.")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

"""Where the policy model runs: a model server the operator manages, or an endpoint it looks up."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from gym_operator.api.common import ApiModel, EnvVar, ResourceRequirements, Toleration, cel

DEFAULT_SERVER_PORT = 8000
DEFAULT_SERVICE_PATH = "/v1"
DEFAULT_INFERENCE_SERVICE_PATH = "/openai/v1"


class ServerVolume(ApiModel):
    """A volume mounted into the model server: a PersistentVolumeClaim (a model cache) or an
    emptyDir (scratch space, or `medium: Memory` for /dev/shm)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.claimName) != has(self.emptyDir)",
                    "set exactly one of claimName and emptyDir",
                )
            ]
        }
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Volume name (a DNS label; `tmp` is taken by the server's /tmp).",
    )
    mount_path: str = Field(
        pattern=r"^/", description="Where the volume appears in the server container."
    )
    claim_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="A PersistentVolumeClaim in the RolloutJob's namespace, e.g. a model cache.",
    )
    empty_dir: Literal["Disk", "Memory"] | None = Field(
        default=None,
        description="An emptyDir on the node's disk, or in memory (Memory: e.g. at /dev/shm).",
    )
    read_only: bool | None = Field(
        default=None,
        description="Mount read-only (unset: false; no default in the schema, so a re-applied "
        "list reads back unchanged).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ServerVolume:
        if (self.claim_name is None) == (self.empty_dir is None):
            raise ValueError(f"volume {self.name}: set exactly one of claimName and emptyDir")
        if self.name == "tmp":
            raise ValueError("volume name tmp is taken by the server's /tmp")
        return self


class ServerSpec(ApiModel):
    """An OpenAI-compatible model server the operator runs for the job (a Deployment and a
    Service owned by the RolloutJob). Generators start once it is ready; it is deleted when the
    job finishes, fails or is suspended, so its GPUs are held only while the job works."""

    image: str = Field(
        min_length=1,
        description="Server image, e.g. vllm/vllm-openai:v0.11.0, lmsysorg/sglang or "
        "ghcr.io/ggml-org/llama.cpp:server.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Image pull policy (the cluster's default when unset)."
    )
    command: list[str] | None = Field(
        default=None,
        description="Entrypoint; unset keeps the image's (vllm/vllm-openai: `vllm serve`).",
    )
    args: list[str] | None = Field(
        default=None,
        description="Arguments; unset gives vLLM's: --model <model> --port <port> "
        "--served-model-name <model>. Set them for SGLang or llama.cpp (see docs).",
    )
    model: str = Field(
        min_length=1,
        description="Model the server loads (e.g. Qwen/Qwen3-8B); also the model name "
        "requested when policy.model is unset.",
    )
    port: int = Field(
        default=DEFAULT_SERVER_PORT, ge=1, le=65535, description="Port the server listens on."
    )
    readiness_path: str = Field(
        default="/v1/models",
        pattern=r"^/",
        description="HTTP GET path of the readiness probe: the server is ready when it answers "
        "2xx here (the OpenAI model list).",
    )
    replicas: int = Field(default=1, ge=1, le=64, description="Server replicas behind its Service.")
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Requests and limits, GPUs included, e.g. limits: {nvidia.com/gpu: '1'}.",
    )
    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables; secretKeyRef for tokens (e.g. HF_TOKEN), never copied.",
    )
    node_selector: dict[str, str] | None = Field(
        default=None, description="Node selector of the server pods (e.g. a GPU pool)."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, description="Tolerations of the server pods (e.g. nvidia.com/gpu taints)."
    )
    volumes: list[ServerVolume] | None = Field(
        default=None, max_length=16, description="Volumes, e.g. a model cache PVC, /dev/shm."
    )
    startup_timeout_seconds: int = Field(
        default=1800,
        ge=1,
        le=86400,
        description="The job fails when no replica is ready this long after the server was "
        "created (pulling a large image and loading weights included).",
    )
    priority_class_name: str | None = Field(
        default=None, description="Priority class of the server pods."
    )


class EndpointRef(ApiModel):
    """A model endpoint that runs already: a Service, or a KServe InferenceService (its
    status.url). A Service with several replicas spreads requests across them."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'Service' || has(self.port)",
                    "endpointRef.port is required for a Service",
                )
            ]
        }
    )

    kind: Literal["Service", "InferenceService"] = Field(
        default="Service",
        description="Service (core/v1) or InferenceService (serving.kserve.io/v1beta1).",
    )
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the Service or InferenceService.",
    )
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Its namespace; unset means the RolloutJob's.",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Service port (required for a Service)."
    )
    path: str | None = Field(
        default=None,
        pattern=r"^/",
        description="Path of the OpenAI API: /v1 for a Service, /openai/v1 for an "
        "InferenceService (KServe's OpenAI route) when unset.",
    )

    @model_validator(mode="after")
    def _port_for_service(self) -> EndpointRef:
        if self.kind == "Service" and self.port is None:
            raise ValueError("endpointRef.port is required for a Service")
        return self

    def api_path(self) -> str:
        """The path of the OpenAI API on the endpoint."""
        if self.path is not None:
            return self.path
        return DEFAULT_SERVICE_PATH if self.kind == "Service" else DEFAULT_INFERENCE_SERVICE_PATH

"""The RolloutJob resource: tasks, a policy endpoint, a verifier and sampling in; rollouts out."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict

from gym_operator.api.common import (
    GROUP_VERSION,
    ApiModel,
    ObjectMeta,
    PodTemplate,
    ResourceStatus,
    S3Spec,
    SecretKeyRef,
    cel,
)
from gym_operator.api.serving import EndpointRef, ServerSpec
from gym_operator.api.verifiers import MAX_CONFIG_KEYS, CodeExecutionConfig, check_config

BuiltinVerifier = Literal[
    "math",
    "exact_match",
    "mcqa",
    "regex",
    "json_schema",
    "instruction_following",
    "code_execution",
    "llm_judge",
]
BUILTIN_VERIFIERS: tuple[str, ...] = get_args(BuiltinVerifier)
"""The built-in verifiers' names, in the order `BuiltinVerifier` lists them."""
EMBEDDED_MODELS: tuple[str, ...] = ("smollm2",)


def _bounds(name: str) -> tuple[Any, ...]:
    """A limit's bounds as CodeExecutionConfig declares them: that model owns them."""
    return tuple(CodeExecutionConfig.model_fields[name].metadata)


class _ConfigLimits(TypedDict, total=False):
    """The checked keys of verifier.config (CONFIG_LIMITS); other keys pass unchecked."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    timeoutSeconds: Annotated[StrictFloat, *_bounds("timeout_seconds")]
    memoryMB: Annotated[StrictInt, *_bounds("memory_mb")]
    maxProcesses: Annotated[StrictInt, *_bounds("max_processes")]


_LIMITS = TypeAdapter(_ConfigLimits)

LIMIT_DESCRIPTIONS = {
    "timeoutSeconds": "Time limit of one check (math, code_execution, llm_judge).",
    "memoryMB": "Memory limit of one sandboxed program (code_execution).",
    "maxProcesses": "Process limit of one sandboxed program (code_execution).",
}
CONFIG_LIMITS: dict[str, dict[str, Any]] = {
    key: {
        **{k: v for k, v in schema.items() if k != "title"},
        "description": LIMIT_DESCRIPTIONS[key],
    }
    for key, schema in _LIMITS.json_schema()["properties"].items()
}
"""Limits in verifier.config that must be positive numbers (a negative one would disable them),
as the CRD schema checks them."""


class InputSpec(ApiModel):
    """Where the tasks come from: a JSONL file of NeMo Gym task rows."""

    uri: str = Field(
        min_length=1,
        description="Task file: s3://bucket/key.jsonl, file:///path or a local path (local mode).",
    )
    limit: int | None = Field(
        default=None, ge=1, description="Read at most this many rows (counted before sharding)."
    )
    max_row_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Rows longer than this many bytes are rejected to the errors file.",
    )


POLICY_SOURCES_MESSAGE = (
    "set exactly one of policy.baseURL, policy.embedded, policy.server and policy.endpointRef"
)
BASE_URLS_MESSAGE = "set policy.baseURL (one endpoint) or policy.baseURLs (replicas), not both"
BaseURL = Annotated[str, Field(pattern=r"^https?://", max_length=2048)]


class PolicySpec(ApiModel):
    """The policy model to sample from: an OpenAI-compatible endpoint (a URL, a Service or
    InferenceService, or a server the operator runs) or an embedded model."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.baseURL) || has(self.baseURLs), has(self.embedded), "
                    "has(self.server), has(self.endpointRef)].filter(x, x).size() == 1",
                    POLICY_SOURCES_MESSAGE,
                ),
                cel("!has(self.baseURL) || !has(self.baseURLs)", BASE_URLS_MESSAGE),
                cel(
                    "!has(self.baseURL) || has(self.model)",
                    "policy.model is required with policy.baseURL",
                ),
                cel(
                    "!has(self.baseURLs) || has(self.model)",
                    "policy.model is required with policy.baseURLs",
                ),
                cel(
                    "!has(self.endpointRef) || has(self.model)",
                    "policy.model is required with policy.endpointRef",
                ),
            ]
        }
    )

    base_url: str | None = Field(
        default=None,
        alias="baseURL",
        pattern=r"^https?://",
        description="OpenAI-compatible base URL ending in /v1, e.g. http://vllm:8000/v1.",
    )
    base_urls: list[BaseURL] | None = Field(
        default=None,
        alias="baseURLs",
        min_length=1,
        max_length=256,
        description=(
            "Several replicas of one model, each an OpenAI-compatible base URL ending in /v1: "
            "each request goes to the replica with the fewest requests in flight, and a failing "
            "replica is skipped while the others go on. An http:// URL whose host is a headless "
            "Service counts once per address it resolves to (so does policy.baseURL)."
        ),
    )
    model: str | None = Field(default=None, min_length=1, description="Model name to request.")
    api: Literal["chat", "responses"] = Field(
        default="chat", description="chat: /chat/completions; responses: /responses."
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding the API key (sent as a Bearer token)."
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="Environment variable the worker reads the API key from (local mode).",
    )
    embedded: Literal["smollm2"] | None = Field(
        default=None,
        description="Local mode only: run this bundled model (SmolLM2-135M-Instruct) on loopback.",
    )
    server: ServerSpec | None = Field(
        default=None,
        description="Let the operator run an OpenAI-compatible model server for this job.",
    )
    endpoint_ref: EndpointRef | None = Field(
        default=None, description="Use a model server that runs already: a Service or KServe."
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="Cap on requests in flight to this endpoint across all shards.",
    )
    max_answer_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description=(
            "Answers larger than this are not read: the rollout fails (answer_too_large). "
            "Up to concurrency x this much may be held at once."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> PolicySpec:
        if self.base_url is not None and self.base_urls is not None:
            raise ValueError(BASE_URLS_MESSAGE)
        urls = self.base_url if self.base_urls is None else self.base_urls
        sources = (urls, self.embedded, self.server, self.endpoint_ref)
        if sum(source is not None for source in sources) != 1:
            raise ValueError(POLICY_SOURCES_MESSAGE)
        if self.base_url is not None and not self.model:
            raise ValueError("policy.model is required with policy.baseURL")
        if self.base_urls is not None and not self.model:
            raise ValueError("policy.model is required with policy.baseURLs")
        if self.endpoint_ref is not None and not self.model:
            raise ValueError("policy.model is required with policy.endpointRef")
        return self

    def urls(self) -> list[str]:
        """The base URLs given in the spec: policy.baseURLs, or policy.baseURL alone."""
        if self.base_urls:
            return list(self.base_urls)
        return [self.base_url] if self.base_url else []

    def model_name(self) -> str | None:
        """The model name requested: policy.model, else the managed server's model."""
        if self.model:
            return self.model
        return self.server.model if self.server is not None else None


class SamplingParams(BaseModel):
    """Overrides merged into each task's responses_create_params (OpenAI names, snake_case)."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )

    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling mass.")
    max_output_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Token limit of each response."
    )


def _int_or_auto_schema(schema: dict[str, Any]) -> None:
    """A number or "auto" as the API server checks it: int-or-string, where minimum and
    maximum bound only numbers and the pattern only strings."""
    schema.pop("anyOf", None)
    schema.update(
        {"x-kubernetes-int-or-string": True, "minimum": 1, "maximum": 8192, "pattern": "^auto$"}
    )


class SamplingSpec(ApiModel):
    """How many responses per task, and how many requests in flight."""

    num_repeats: int = Field(default=1, ge=1, le=1024, description="Responses sampled per task.")
    concurrency: Annotated[int, Field(ge=1, le=8192)] | Literal["auto"] = Field(
        default=64,
        description=(
            "Requests in flight per generator pod: a number, or auto (found from observed "
            "latencies, up to policy.maxConcurrency / parallelism, or 1024)."
        ),
        json_schema_extra=_int_or_auto_schema,
    )
    seed_per_repeat: bool = Field(
        default=True, description="Send seed = repeat index so each repeat is reproducible."
    )
    max_turns: int = Field(
        default=8, ge=1, le=100, description="Model turns per rollout when the task has tools."
    )
    max_tool_calls_per_turn: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Tool calls run per model turn; more ends the rollout (max_tool_calls).",
    )
    max_tool_calls: int = Field(
        default=128,
        ge=1,
        le=10000,
        description="Tool calls run per rollout; more ends the rollout (max_tool_calls).",
    )
    params: SamplingParams = Field(
        default_factory=SamplingParams,
        description="responses_create_params overrides: temperature, top_p, max_output_tokens, ...",
    )


class VerifierSpec(ApiModel):
    """Who scores responses: a built-in verifier, a NeMo Gym resource server image, or a URL."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.builtin), has(self.image), has(self.url)].filter(x, x).size() == 1",
                    "set exactly one of verifier.builtin, verifier.image and verifier.url",
                ),
            ]
        }
    )

    builtin: BuiltinVerifier | None = Field(default=None, description="A built-in verifier.")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings of the built-in verifier (see the verifier reference).",
        json_schema_extra={
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": CONFIG_LIMITS,
            "maxProperties": MAX_CONFIG_KEYS,
        },
    )
    image: str | None = Field(
        default=None, description="Image of a NeMo Gym resource server, run as a Deployment."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port the verifier listens on.")
    replicas: int = Field(default=1, ge=1, le=1000, description="Verifier server replicas.")
    url: str | None = Field(
        default=None, pattern=r"^https?://", description="An already running verifier server."
    )
    timeout_seconds: float = Field(
        default=120, gt=0, le=86400, description="Timeout of one /verify request."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts per /verify call before a failure row."
    )
    resources: dict[str, dict[str, str]] | None = Field(
        default=None, description="Resources of the verifier container (requests, limits)."
    )

    @field_validator("config")
    @classmethod
    def _positive_limits(cls, config: dict[str, Any]) -> dict[str, Any]:
        _LIMITS.validate_python(config)  # errors name spec.verifier.config.<key>
        return config

    @model_validator(mode="after")
    def _one_kind(self) -> VerifierSpec:
        chosen = [x for x in (self.builtin, self.image, self.url) if x is not None]
        if len(chosen) != 1:
            raise ValueError("set exactly one of verifier.builtin, verifier.image and verifier.url")
        if self.builtin is not None:
            problems = check_config(self.builtin, self.config)
            if problems:
                raise ValueError("; ".join(problems))
        return self


class LengthPenaltySpec(ApiModel):
    """A linear penalty on long responses: 0 up to startChars, `penalty` at maxChars and beyond."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.maxChars > self.startChars",
                    "reward.lengthPenalty.maxChars must be greater than startChars",
                )
            ]
        }
    )

    start_chars: int = Field(
        default=0, ge=0, le=10_000_000, description="Response length (characters) with no penalty."
    )
    max_chars: int = Field(
        ge=1, le=10_000_000, description="Length at which the full penalty applies."
    )
    penalty: float = Field(
        default=0.5, ge=0, le=1, description="Penalty subtracted at maxChars (reward floor is 0)."
    )

    @model_validator(mode="after")
    def _max_after_start(self) -> LengthPenaltySpec:
        if self.max_chars <= self.start_chars:
            raise ValueError("reward.lengthPenalty.maxChars must be greater than startChars")
        return self


class RewardSpec(ApiModel):
    """How the verifier's score becomes the stored reward."""

    mode: Literal["binary", "continuous"] = Field(
        default="binary",
        description="binary: 1.0 when score >= passThreshold else 0.0; continuous: the score.",
    )
    pass_threshold: float = Field(
        default=1.0, ge=0, le=1, description="Score at or above which a rollout counts as passed."
    )
    components: dict[str, float] | None = Field(
        default=None,
        description="Weights of reward components; reward = weighted sum of the components.",
    )
    gates: list[str] | None = Field(
        default=None,
        max_length=32,
        description="Components that must reach gateThreshold (e.g. format), else the reward is 0.",
    )
    gate_threshold: float = Field(
        default=1.0, ge=0, le=1, description="Value at or above which a gate component passes."
    )
    length_penalty: LengthPenaltySpec | None = Field(
        default=None, description="Subtract a penalty that grows with the response length."
    )


class OutputSpec(ApiModel):
    """Where rollouts go and how they are encoded."""

    uri: str = Field(
        min_length=1, description="Output prefix: s3://bucket/prefix/ or file:///dir/."
    )
    format: Literal["jsonl", "parquet"] = Field(default="jsonl", description="Part file format.")
    compression: Literal["zstd", "gzip", "none"] = Field(
        default="zstd", description="Compression of JSONL parts."
    )
    part_rows: int = Field(
        default=1000, ge=1, le=1_000_000, description="Commit a part after this many rollouts."
    )
    part_seconds: float = Field(
        default=5,
        gt=0,
        le=3600,
        description=(
            "Commit a non-empty part at least this often, in seconds. A killed pod re-sends "
            "the answers not committed yet: at most this long of them, plus those in flight."
        ),
    )


class RetrySpec(ApiModel):
    """Bounded retries of model requests."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.maxRetrySeconds >= self.requestTimeoutSeconds",
                    "retry.maxRetrySeconds must be at least retry.requestTimeoutSeconds",
                )
            ]
        }
    )

    max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts per model request.")
    request_timeout_seconds: float = Field(
        default=600, gt=0, le=86400, description="Timeout of one model request."
    )
    max_retry_seconds: float = Field(
        default=900,
        gt=0,
        le=604800,
        description="Wall-clock budget for one request and its retries.",
    )
    backoff_base_seconds: float = Field(
        default=1.0, gt=0, le=600, description="First backoff; doubles per attempt, with jitter."
    )
    backoff_max_seconds: float = Field(
        default=60, gt=0, le=3600, description="Longest single backoff."
    )
    endpoint_failure_limit: int = Field(
        default=50,
        ge=0,
        le=1_000_000,
        description=(
            "Stop the shard when this many rollouts in a row fail on the model or verifier "
            "endpoint itself (unreachable, timeouts, 5xx, 429 past the budget, 401/403/404, "
            "answers that are not JSON, a verifier refusing answers with 4xx). Those rollouts "
            "are not written as failures: the shard waits for the endpoint "
            "(endpointWaitSeconds), then resumes and samples them again. 0 never stops."
        ),
    )
    endpoint_wait_seconds: float = Field(
        default=120,
        ge=0,
        le=86400,
        description=(
            "How long a shard stopped by endpointFailureLimit keeps trying again in-process "
            "(after backoffBaseSeconds, doubling up to backoffMaxSeconds) before it exits with "
            "code 5 for the Job to retry the pod. 0 exits at once."
        ),
    )

    max_rollout_runs: int = Field(
        default=3,
        ge=1,
        le=100,
        description=(
            "Runs of one rollout across resumes. When a job that has not succeeded is run "
            "again (or a pod restarts), its failure rows of a retryable class (timeouts, "
            "connection errors, 5xx, 429, malformed answers, a verifier that said its "
            "reward is not a measurement, e.g. a judge that was down) are sampled again, "
            "until the rollout has failed this many runs. The attempt counts are kept in the "
            "shard manifest; a retried rollout still ends as exactly one row. 1 never resamples."
        ),
    )

    @model_validator(mode="after")
    def _budget_covers_timeout(self) -> RetrySpec:
        if self.max_retry_seconds < self.request_timeout_seconds:
            raise ValueError("retry.maxRetrySeconds must be at least retry.requestTimeoutSeconds")
        return self


class AgentSpec(ApiModel):
    """A NeMo Gym agent server that runs each rollout itself (`POST /run`)."""

    url: str = Field(
        min_length=1,
        description=(
            "Base URL of a running NeMo Gym agent server (e.g. its simple_agent). Each rollout "
            "is one POST /run with the task row (sampling.params applied to its "
            "responses_create_params); the agent calls the model and resources servers of its "
            "own config and answers the verified row. policy and verifier are then not called."
        ),
    )


class FailurePolicySpec(ApiModel):
    """When a finished job counts as failed: too many of its rollouts ended as failure rows."""

    max_failed_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description=(
            "Highest fraction of finished rollouts (rewarded or failed) that may be failure "
            "rows. Over it the job ends Failed naming its top failure classes, and no _SUCCESS "
            "is written (the committed rows stay; a rerun retries the retryable failures)."
        ),
    )
    min_finished: int = Field(
        default=10,
        ge=0,
        le=1_000_000_000,
        description=(
            "Rollouts that must have finished before the fraction is judged, so one failure in "
            "a three-rollout smoke test does not fail it. A job none of whose rollouts got a "
            "reward fails whatever its size (unless maxFailedFraction is 1)."
        ),
    )

    def exceeded(self, completed: int, failed: int) -> bool:
        """Whether a finished job with these counts failed by this policy."""
        finished = completed + failed
        if failed and not completed:
            return self.max_failed_fraction < 1
        return (
            finished >= max(self.min_finished, 1) and failed > self.max_failed_fraction * finished
        )


class RolloutJobSpec(ApiModel):
    """Desired state of a RolloutJob."""

    input: InputSpec = Field(description="The task file.")
    policy: PolicySpec = Field(description="The model to sample responses from.")
    sampling: SamplingSpec = Field(default_factory=SamplingSpec, description="Sampling settings.")
    verifier: VerifierSpec = Field(description="How responses are scored.")
    reward: RewardSpec = Field(default_factory=RewardSpec, description="Reward shaping.")
    parallelism: int = Field(
        default=1, ge=1, le=1000, description="Generator pods, one shard each (task index mod N)."
    )
    output: OutputSpec = Field(description="Where rollouts are written.")
    s3: S3Spec | None = Field(default=None, description="S3 connection settings.")
    retry: RetrySpec = Field(default_factory=RetrySpec, description="Retry policy.")
    agent: AgentSpec | None = Field(
        default=None, description="Hand each rollout to a NeMo Gym agent instead of sampling here."
    )
    failure_policy: FailurePolicySpec = Field(
        default_factory=FailurePolicySpec,
        description="How many failed rollouts a job may finish with and still succeed.",
    )
    backoff_limit_per_index: int = Field(
        default=3, ge=0, le=100, description="Pod restarts allowed per shard before it fails."
    )
    suspend: bool = Field(default=False, description="Pause the job; resume by setting false.")
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the resource this long after it finished."
    )
    template: PodTemplate | None = Field(default=None, description="Worker pod settings.")
    job_managed_by: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="Set as spec.managedBy of the generator Job, e.g. kueue.x-k8s.io/multikueue "
        "(then that controller, not the Job controller, runs it).",
    )


class Progress(ApiModel):
    """Counts aggregated from the shard manifests."""

    total: int | None = Field(default=None, description="Rollouts expected (tasks x repeats).")
    completed: int = Field(default=0, description="Rollouts committed with a reward.")
    failed: int = Field(default=0, description="Rollouts committed as typed failures.")
    percent: float = Field(default=0.0, description="(completed + failed) / total x 100.")
    rollouts_per_second: float | None = Field(default=None, description="Recent throughput.")
    eta_seconds: float | None = Field(default=None, description="Estimated seconds to finish.")
    concurrency_limit: int | None = Field(
        default=None,
        description="Model requests the running shards may have in flight, summed from their "
        "last commits (sampling.concurrency, cut on 429s, or what `auto` found); absent while "
        "the job is not Running.",
    )
    summary: str | None = Field(
        default=None, description="`done/total` (or `done/?`), shown by kubectl get."
    )
    last_updated: str | None = Field(default=None, description="When progress was read.")


class RewardSummary(ApiModel):
    """Reward statistics over committed rollouts."""

    mean: float | None = Field(default=None, description="Mean reward.")
    pass_rate: float | None = Field(default=None, description="Fraction of passed rollouts.")


class OutputStatus(ApiModel):
    """Where the results are."""

    uri: str | None = Field(default=None, description="Output prefix.")
    manifest: str | None = Field(default=None, description="URI of the _SUCCESS file.")


class RolloutJobStatus(ResourceStatus):
    """Observed state of a RolloutJob."""

    progress: Progress | None = Field(default=None, description="Rollout counts and rate.")
    rewards: RewardSummary | None = Field(default=None, description="Reward statistics.")
    output: OutputStatus | None = Field(default=None, description="Output location.")
    viewer_path: str | None = Field(
        default=None,
        description="Path of this job's page in the chart's rollout viewer, e.g. "
        "/rolloutjobs/<namespace>/<name>; set while a viewer lists the job's namespace "
        "(kubectl port-forward its Service, then open this path).",
    )


class RolloutJob(ApiModel):
    """A RolloutJob resource."""

    api_version: Literal["gymops.dev/v1alpha1"] = Field(default=GROUP_VERSION)
    kind: Literal["RolloutJob"] = "RolloutJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: RolloutJobSpec
    status: RolloutJobStatus | None = None

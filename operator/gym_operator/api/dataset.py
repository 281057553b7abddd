"""The Dataset resource: which rollouts to keep, and in which training format to write them."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from gym_operator.api.common import (
    GROUP_VERSION,
    ApiModel,
    ObjectMeta,
    PodTemplate,
    ResourceStatus,
    S3Spec,
    cel,
)

DatasetKind = Literal["sft", "dpo", "rl", "kto"]
ExportFormat = Literal["trl", "openrlhf", "verl", "nemo-rl", "nemo-gym"]

# Which kinds each format has a loader for (research/formats.md): e.g. verl has no DPO trainer.
SUPPORTED_KINDS: dict[str, tuple[str, ...]] = {
    "trl": ("sft", "dpo", "rl", "kto"),
    "openrlhf": ("sft", "dpo", "rl"),
    "verl": ("sft", "rl"),
    "nemo-rl": ("sft", "dpo", "rl"),
    "nemo-gym": ("sft", "rl"),
}


# Which file types each format's loaders read (NeMo-RL's dataset classes and NeMo Gym's tools read
# JSON lines; verl's MultiTurnSFTDataset reads parquet only).
SUPPORTED_FILE_FORMATS: dict[str, tuple[str, ...]] = {
    "trl": ("jsonl", "parquet"),
    "openrlhf": ("jsonl", "parquet"),
    "verl": ("jsonl", "parquet"),
    "nemo-rl": ("jsonl",),
    "nemo-gym": ("jsonl",),
}


def unsupported_file_format_message(fmt: str) -> str:
    """The error for an output.fileFormat that `fmt` cannot read (same text in pydantic and CEL)."""
    types = ", ".join(SUPPORTED_FILE_FORMATS[fmt])
    return f"format {fmt} reads only output.fileFormat {types}"


def unsupported_kind_message(fmt: str) -> str:
    """The error for a kind that `fmt` has no loader for (same text in pydantic and CEL)."""
    kinds = ", ".join(SUPPORTED_KINDS[fmt])
    return f"format {fmt} has no loader for this kind; it takes kinds {kinds}"


def _supported_kinds_rules() -> list[dict[str, str]]:
    """The CEL rules equivalent of SUPPORTED_KINDS, one per format."""
    return [
        cel(f"self.format != '{fmt}' || self.kind in {list(kinds)}", unsupported_kind_message(fmt))
        for fmt, kinds in SUPPORTED_KINDS.items()
    ]


def _supported_file_formats_rules() -> list[dict[str, str]]:
    """CEL rules for SUPPORTED_FILE_FORMATS, for the formats that do not read every file type."""
    return [
        cel(
            f"self.format != '{fmt}' || self.output.fileFormat in {list(types)}",
            unsupported_file_format_message(fmt),
        )
        for fmt, types in SUPPORTED_FILE_FORMATS.items()
        if set(types) != {"jsonl", "parquet"}
    ]


class DatasetSource(ApiModel):
    """One source of rollouts: a RolloutJob in the same namespace, or an output prefix."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.rolloutJobRef) != has(self.uri)",
                    "set exactly one of rolloutJobRef and uri in each source",
                )
            ]
        }
    )

    rollout_job_ref: str | None = Field(
        default=None, min_length=1, description="Name of a RolloutJob; its output is read."
    )
    uri: str | None = Field(default=None, min_length=1, description="A RolloutJob output prefix.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSource:
        if (self.rollout_job_ref is None) == (self.uri is None):
            raise ValueError("set exactly one of rolloutJobRef and uri in each source")
        return self


class PassRateWindow(ApiModel):
    """Keep tasks whose pass rate lies in [min, max] (GRPO wants 0 < rate < 1)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.min <= self.max", "passRate.min must not exceed passRate.max")
            ]
        }
    )

    min: float = Field(default=0.0, ge=0, le=1, description="Lowest pass rate kept.")
    max: float = Field(default=1.0, ge=0, le=1, description="Highest pass rate kept.")
    exclusive: bool = Field(
        default=False, description="Exclude the bounds themselves (keep min < rate < max)."
    )
    pass_threshold: float | None = Field(
        default=None,
        description="Reward at or above which a rollout counts as passed in the pass rate"
        " (default: the source RolloutJob's reward.passThreshold, 1.0 unless set there). With"
        " continuous rewards set it below the top score, e.g. 0.5, so that tasks whose rewards"
        " vary are not read as all-failed.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> PassRateWindow:
        if self.min > self.max:
            raise ValueError("passRate.min must not exceed passRate.max")
        return self


class BalanceSpec(ApiModel):
    """Cap the rows kept per value of a task field."""

    by: str = Field(min_length=1, description="Task field to group by, e.g. task_type.")
    max_per_group: int = Field(ge=1, description="Most rows kept per group.")


class FilterSpec(ApiModel):
    """Which rollouts are kept; each dropped rollout is counted under its reason."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.minReward) || !has(self.maxReward)"
                    " || self.minReward <= self.maxReward",
                    "filters.minReward must not exceed filters.maxReward",
                )
            ]
        }
    )

    min_reward: float | None = Field(default=None, description="Drop rollouts below this reward.")
    max_reward: float | None = Field(default=None, description="Drop rollouts above this reward.")
    drop_truncated: bool = Field(default=True, description="Drop responses cut by the token limit.")
    drop_empty: bool = Field(
        default=True,
        description="Drop responses with no text and no tool call, and responses that stop at"
        " a tool output with no answer after it.",
    )
    dedup: Literal["none", "exact", "normalized"] = Field(
        default="exact", description="Drop repeated responses within a task."
    )
    min_response_chars: int | None = Field(
        default=None, ge=0, description="Shortest response kept."
    )
    max_response_chars: int | None = Field(default=None, ge=1, description="Longest response kept.")
    pass_rate: PassRateWindow | None = Field(default=None, description="Per-task pass-rate window.")
    balance: BalanceSpec | None = Field(default=None, description="Cap per group.")

    @model_validator(mode="after")
    def _ordered(self) -> FilterSpec:
        if (
            self.min_reward is not None
            and self.max_reward is not None
            and self.min_reward > self.max_reward
        ):
            raise ValueError("filters.minReward must not exceed filters.maxReward")
        return self


class SftSpec(ApiModel):
    """How SFT rows are chosen from a task's rollouts."""

    selection: Literal["best", "all"] = Field(
        default="best", description="best: the top response per task; all: every kept response."
    )
    tool_turns: Literal["context", "completion"] = Field(
        default="context",
        description="For formats whose SFT rows are prompt/completion (trl, openrlhf), which cannot"
        " mask a message inside the completion: context puts a response's tool calls and tool"
        " outputs into the prompt (no loss on tool outputs; only the final answer is trained);"
        " completion keeps them in the completion (tool calls trained, tool outputs get loss too)."
        " verl and nemo-rl mask tool outputs themselves and ignore this.",
    )


class PairingSpec(ApiModel):
    """How DPO pairs are built from responses to the same task."""

    strategy: Literal["best_vs_worst", "all_pairs"] = Field(
        default="best_vs_worst", description="Pair the best with the worst, or every ordered pair."
    )
    min_quality_difference: float = Field(
        default=0.1, gt=0, description="Smallest reward gap between chosen and rejected."
    )
    max_pairs_per_prompt: int = Field(default=1, ge=1, description="Most pairs per task.")


class KtoSpec(ApiModel):
    """How KTO labels are assigned."""

    desirable_min_reward: float = Field(
        default=1.0, description="Responses at or above this reward are labelled desirable."
    )


class SplitSpec(ApiModel):
    """Train/validation split by task: a task never lands in both."""

    validation_fraction: float = Field(
        default=0.0, ge=0, lt=1, description="Share of tasks put in the validation split."
    )
    seed: int = Field(default=42, description="Seed of the split, for reproducibility.")


class DatasetOutputSpec(ApiModel):
    """Where the dataset goes."""

    uri: str = Field(
        min_length=1, description="Output prefix: s3://bucket/prefix/ or file:///dir/."
    )
    file_format: Literal["jsonl", "parquet"] = Field(default="jsonl", description="File format.")
    rows_per_file: int = Field(
        default=100_000, ge=1, description="Start a new file after this many rows."
    )
    allow_empty: bool = Field(
        default=False,
        description="Succeed with 0 rows kept (by default a dataset with no rows is Failed).",
    )


class DatasetSpec(ApiModel):
    """Desired state of a Dataset."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind == 'dpo' || !has(self.pairing)",
                    "pairing applies only to kind dpo",
                ),
                cel(
                    "!(self.format == 'verl' && self.kind == 'sft')"
                    " || self.output.fileFormat == 'parquet'",
                    "verl SFT data must be parquet (output.fileFormat: parquet)",
                ),
                *_supported_kinds_rules(),
                *_supported_file_formats_rules(),
            ]
        }
    )

    sources: list[DatasetSource] = Field(min_length=1, description="Rollouts to read.")
    kind: DatasetKind = Field(description="sft, dpo, rl or kto.")
    filters: FilterSpec = Field(default_factory=FilterSpec, description="Which rollouts are kept.")
    sft: SftSpec | None = Field(default=None, description="SFT selection (kind sft).")
    pairing: PairingSpec | None = Field(default=None, description="DPO pairing (kind dpo).")
    kto: KtoSpec | None = Field(default=None, description="KTO labels (kind kto).")
    split: SplitSpec = Field(default_factory=SplitSpec, description="Train/validation split.")
    format: ExportFormat = Field(description="trl, openrlhf, verl, nemo-rl or nemo-gym.")
    output: DatasetOutputSpec = Field(description="Where the dataset is written.")
    s3: S3Spec | None = Field(default=None, description="S3 connection settings.")
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the resource this long after it finished."
    )
    template: PodTemplate | None = Field(default=None, description="Builder pod settings.")

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        if self.pairing is not None and self.kind != "dpo":
            raise ValueError("pairing applies only to kind dpo")
        if self.format == "verl" and self.kind == "sft" and self.output.file_format != "parquet":
            raise ValueError("verl SFT data must be parquet (output.fileFormat: parquet)")
        if self.kind not in SUPPORTED_KINDS[self.format]:
            raise ValueError(unsupported_kind_message(self.format))
        if self.output.file_format not in SUPPORTED_FILE_FORMATS[self.format]:
            raise ValueError(unsupported_file_format_message(self.format))
        return self


class DatasetCounts(ApiModel):
    """What went in and what came out."""

    input: int = Field(default=0, description="Rollouts read.")
    kept: int = Field(default=0, description="Rows written.")
    dropped: dict[str, int] = Field(default_factory=dict, description="Dropped rollouts by reason.")


class SplitCounts(ApiModel):
    """Rows per split."""

    train: int = Field(default=0, description="Rows in the train split.")
    validation: int = Field(default=0, description="Rows in the validation split.")


class DatasetStatus(ResourceStatus):
    """Observed state of a Dataset."""

    counts: DatasetCounts | None = Field(default=None, description="Rows in and out.")
    splits: SplitCounts | None = Field(default=None, description="Rows per split.")
    files: list[str] | None = Field(default=None, description="Files written.")
    card: str | None = Field(default=None, description="URI of the dataset card.")


class Dataset(ApiModel):
    """A Dataset resource."""

    api_version: Literal["gymops.dev/v1alpha1"] = Field(default=GROUP_VERSION)
    kind: Literal["Dataset"] = "Dataset"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DatasetSpec
    status: DatasetStatus | None = None

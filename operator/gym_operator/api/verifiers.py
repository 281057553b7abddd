"""Typed config of each built-in verifier: unknown keys and bad values are refused, by name.

One model per built-in (keys camelCase, as in `spec.verifier.config`). `check_config` is used by
the RolloutJob model (so `gymops run`, the generator, the operator and `gymops validate` refuse a
bad config before any request; the operator turns such a resource Failed with reason InvalidSpec).

The CRD does not check these keys: `config` keeps unknown fields (a NeMo Gym server's config is
free-form), and the real API server does not let CEL enumerate or read the fields of such an
object, so per-verifier rules there do not compile (found on the real control plane). The CRD
checks only the numeric limits it can type (see `CONFIG_LIMITS` in rolloutjob.py).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from gym_operator.api.common import ApiModel

MAX_CONFIG_KEYS = 32
"""Bound on top-level config keys (keeps the CRD's CEL cost estimate small)."""


class VerifierConfig(ApiModel):
    """Keys every built-in accepts."""

    model_config = ConfigDict(populate_by_name=False)

    strip_reasoning: bool = Field(
        default=True, description="Remove <think> blocks before scoring (false: score raw text)."
    )


class MathJudgeConfig(ApiModel):
    """`math` hybrid mode: a judge asked only when the rules say no (see math_hybrid)."""

    base_url: str = Field(alias="baseURL", pattern=r"^https?://")
    model: str = Field(min_length=1)
    api_key_env: str = Field(default="JUDGE_API_KEY", min_length=1)
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    max_calls: int = Field(default=100_000, ge=0)
    both_orderings: bool = True
    max_response_chars: int = Field(default=2000, ge=1, le=1_000_000)
    temperature: float = Field(default=0, ge=0, le=2)
    prompt_template: str | None = None
    equal_label: str = Field(default="[[A=B]]", min_length=1)
    not_equal_label: str = Field(default="[[A!=B]]", min_length=1)


class MathConfig(VerifierConfig):
    """`math`: answer equivalence with math-verify."""

    answer_field: str = Field(default="expected_answer", min_length=1)
    extraction: Literal["auto", "boxed", "gsm8k"] = "auto"
    timeout_seconds: float = Field(default=5, gt=0, le=3600)
    options_field: str = Field(default="options", min_length=1)
    judge: MathJudgeConfig | None = None


class ExactMatchConfig(VerifierConfig):
    """`exact_match`: the response equals the answer after normalisation."""

    answer_field: str = Field(default="expected_answer", min_length=1)
    case_insensitive: bool = True
    collapse_whitespace: bool = True
    ignore_punctuation: bool = False
    strip_articles: bool = False
    strip_thousands_separators: bool = False
    mode: Literal["full", "contains", "lastLine"] = "full"


class McqaConfig(VerifierConfig):
    """`mcqa`: multiple choice."""

    answer_field: str = Field(default="expected_answer", min_length=1)
    options_field: str = Field(default="options", min_length=1)
    extraction: Literal["auto", "strict", "boxed", "first", "last"] = "auto"


class RegexConfig(VerifierConfig):
    """`regex`: the response matches a pattern."""

    pattern: str | None = None
    pattern_field: str = Field(default="pattern", min_length=1)
    mode: Literal["search", "full"] = "search"
    flags: list[Literal["IGNORECASE", "MULTILINE", "DOTALL"]] = Field(default_factory=list)
    answer_field: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class JsonSchemaConfig(VerifierConfig):
    """`json_schema`: the response is JSON valid against a schema."""

    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    schema_field: str = Field(default="schema", min_length=1)
    partial_credit: float = Field(default=0.0, ge=0, le=1)


class InstructionFollowingConfig(VerifierConfig):
    """`instruction_following`: IFEval-style checkable instructions."""

    instructions_field: str = Field(default="instructions", min_length=1)
    instructions: list[dict[str, Any]] | None = None
    scoring: Literal["fraction", "all"] = "fraction"


class CodeExecutionConfig(VerifierConfig):
    """`code_execution`: the program runs against the task's tests in the sandbox."""

    test_cases_field: str = Field(default="test_cases", min_length=1)
    tests_field: str = Field(default="tests", min_length=1)
    timeout_seconds: float = Field(default=10, gt=0, le=3600)
    memory_mb: int = Field(default=512, ge=16, le=1_048_576, alias="memoryMB")
    max_processes: int = Field(default=32, ge=1, le=4096)
    scoring: Literal["fraction", "all"] = "fraction"
    allow_unsandboxed: bool = False


class LlmJudgeConfig(VerifierConfig):
    """`llm_judge`: an OpenAI-compatible judge model."""

    base_url: str = Field(alias="baseURL", pattern=r"^https?://")
    model: str = Field(min_length=1)
    api_key_env: str = Field(default="JUDGE_API_KEY", min_length=1)
    mode: Literal["equivalence", "score"] = "equivalence"
    prompt_template: str | None = None
    both_orderings: bool = True
    answer_field: str = Field(default="expected_answer", min_length=1)
    equal_label: str = Field(default="[[A=B]]", min_length=1)
    not_equal_label: str = Field(default="[[A!=B]]", min_length=1)
    timeout_seconds: float = Field(default=60, gt=0, le=3600)
    temperature: float = Field(default=0, ge=0, le=2)


CONFIG_MODELS: dict[str, type[VerifierConfig]] = {
    "math": MathConfig,
    "exact_match": ExactMatchConfig,
    "mcqa": McqaConfig,
    "regex": RegexConfig,
    "json_schema": JsonSchemaConfig,
    "instruction_following": InstructionFollowingConfig,
    "code_execution": CodeExecutionConfig,
    "llm_judge": LlmJudgeConfig,
}


def known_keys(builtin: str) -> list[str]:
    """The config keys a built-in accepts, as written in YAML."""
    model = CONFIG_MODELS[builtin]
    return [f.alias or name for name, f in model.model_fields.items()]


def check_config(builtin: str, config: dict[str, Any]) -> list[str]:
    """Problems of a built-in's config, one line each naming `config.<key>`; [] when valid."""
    model = CONFIG_MODELS.get(builtin)
    if model is None:
        return []
    try:
        model.model_validate(config)
    except ValidationError as exc:
        return [_describe(builtin, item) for item in exc.errors()]
    return []


def _describe(builtin: str, item: Any) -> str:
    where = "config." + ".".join(str(p) for p in item["loc"])
    if item["type"] == "extra_forbidden":
        key = str(item["loc"][0])
        keys = known_keys(builtin)
        close = difflib.get_close_matches(key, keys, n=1)
        guess = f" (did you mean {close[0]}?)" if close else ""
        return f"{where}: unknown key for the {builtin} verifier{guess}; known: {', '.join(keys)}"
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {item.get('input')!r})"

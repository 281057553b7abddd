"""The bad-spec corpus: good RolloutJob and Dataset bodies and one-change mutations that break them.

Each case is (id, kind, path, value, field): set `path` (dotted, `[i]` for list items) to `value`
(DELETE removes it) in the good body of `kind`; the spec must then be refused with exactly one
problem, located at `field`. Shared by the pydantic test and the CRD schema test.
"""

from __future__ import annotations

import copy
import re
from typing import Any

DELETE = object()

GOOD_JOB: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "RolloutJob",
    "metadata": {"name": "math-run1"},
    "spec": {
        "input": {"uri": "s3://bucket/tasks.jsonl", "limit": 100},
        "policy": {
            "baseURL": "http://vllm:8000/v1",
            "model": "qwen3-8b",
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
        },
        "sampling": {"numRepeats": 4, "concurrency": 8, "params": {"temperature": 0.7}},
        "verifier": {"builtin": "math"},
        "reward": {"mode": "binary", "components": {"accuracy": 1.0}},
        "output": {"uri": "s3://bucket/rollouts/run1/"},
        "retry": {"maxAttempts": 3},
        "template": {
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "env": [{"name": "A", "value": "b"}],
        },
    },
}

GOOD_DATASET: dict[str, Any] = {
    "apiVersion": "gymops.dev/v1alpha1",
    "kind": "Dataset",
    "metadata": {"name": "math-dpo"},
    "spec": {
        "sources": [{"rolloutJobRef": "math-run1"}],
        "kind": "dpo",
        "filters": {"minReward": 0.0, "maxReward": 1.0, "passRate": {"min": 0.1, "max": 0.9}},
        "pairing": {"minQualityDifference": 0.2},
        "split": {"validationFraction": 0.1},
        "format": "trl",
        "output": {"uri": "s3://bucket/datasets/math-dpo/"},
    },
}

J, D = "RolloutJob", "Dataset"

# (id, kind, path to change, new value, field the error must name)
OUT_OF_RANGE = [
    ("input-uri-empty", J, "spec.input.uri", "", "spec.input.uri"),
    ("input-limit-zero", J, "spec.input.limit", 0, "spec.input.limit"),
    ("max-row-bytes-low", J, "spec.input.maxRowBytes", 100, "spec.input.maxRowBytes"),
    ("max-row-bytes-high", J, "spec.input.maxRowBytes", 2**30, "spec.input.maxRowBytes"),
    ("base-url-scheme", J, "spec.policy.baseURL", "ftp://vllm/v1", "spec.policy.baseURL"),
    ("model-empty", J, "spec.policy.model", "", "spec.policy.model"),
    ("api-unknown", J, "spec.policy.api", "completions", "spec.policy.api"),
    ("max-concurrency-zero", J, "spec.policy.maxConcurrency", 0, "spec.policy.maxConcurrency"),
    ("max-concurrency-high", J, "spec.policy.maxConcurrency", 10**6, "spec.policy.maxConcurrency"),
    (
        "secret-name-empty",
        J,
        "spec.policy.apiKeySecretRef.name",
        "",
        "spec.policy.apiKeySecretRef.name",
    ),
    ("repeats-zero", J, "spec.sampling.numRepeats", 0, "spec.sampling.numRepeats"),
    ("repeats-high", J, "spec.sampling.numRepeats", 1025, "spec.sampling.numRepeats"),
    ("concurrency-zero", J, "spec.sampling.concurrency", 0, "spec.sampling.concurrency"),
    ("concurrency-high", J, "spec.sampling.concurrency", 8193, "spec.sampling.concurrency"),
    ("max-turns-zero", J, "spec.sampling.maxTurns", 0, "spec.sampling.maxTurns"),
    ("tool-calls-zero", J, "spec.sampling.maxToolCalls", 0, "spec.sampling.maxToolCalls"),
    ("answer-bytes-low", J, "spec.policy.maxAnswerBytes", 10, "spec.policy.maxAnswerBytes"),
    (
        "verifier-memory-negative",
        J,
        "spec.verifier.config.memoryMB",
        -1,
        "spec.verifier.config.memoryMB",
    ),
    (
        "verifier-timeout-negative",
        J,
        "spec.verifier.config.timeoutSeconds",
        -5,
        "spec.verifier.config.timeoutSeconds",
    ),
    (
        "verifier-processes-zero",
        J,
        "spec.verifier.config.maxProcesses",
        0,
        "spec.verifier.config.maxProcesses",
    ),
    (
        "temperature-negative",
        J,
        "spec.sampling.params.temperature",
        -0.1,
        "spec.sampling.params.temperature",
    ),
    (
        "temperature-high",
        J,
        "spec.sampling.params.temperature",
        2.5,
        "spec.sampling.params.temperature",
    ),
    ("top-p-zero", J, "spec.sampling.params.top_p", 0, "spec.sampling.params.top_p"),
    ("top-p-high", J, "spec.sampling.params.top_p", 1.5, "spec.sampling.params.top_p"),
    (
        "max-tokens-zero",
        J,
        "spec.sampling.params.max_output_tokens",
        0,
        "spec.sampling.params.max_output_tokens",
    ),
    ("builtin-unknown", J, "spec.verifier.builtin", "chess", "spec.verifier.builtin"),
    ("verifier-port-zero", J, "spec.verifier.port", 0, "spec.verifier.port"),
    ("verifier-port-high", J, "spec.verifier.port", 70000, "spec.verifier.port"),
    ("verifier-replicas-zero", J, "spec.verifier.replicas", 0, "spec.verifier.replicas"),
    ("verifier-timeout-zero", J, "spec.verifier.timeoutSeconds", 0, "spec.verifier.timeoutSeconds"),
    ("verifier-attempts-high", J, "spec.verifier.maxAttempts", 21, "spec.verifier.maxAttempts"),
    ("reward-mode-unknown", J, "spec.reward.mode", "sigmoid", "spec.reward.mode"),
    ("pass-threshold-high", J, "spec.reward.passThreshold", 1.5, "spec.reward.passThreshold"),
    ("parallelism-zero", J, "spec.parallelism", 0, "spec.parallelism"),
    ("parallelism-high", J, "spec.parallelism", 1001, "spec.parallelism"),
    ("output-uri-empty", J, "spec.output.uri", "", "spec.output.uri"),
    ("output-format-unknown", J, "spec.output.format", "csv", "spec.output.format"),
    ("compression-unknown", J, "spec.output.compression", "brotli", "spec.output.compression"),
    ("part-rows-zero", J, "spec.output.partRows", 0, "spec.output.partRows"),
    ("part-seconds-zero", J, "spec.output.partSeconds", 0, "spec.output.partSeconds"),
    ("retry-attempts-zero", J, "spec.retry.maxAttempts", 0, "spec.retry.maxAttempts"),
    ("retry-attempts-high", J, "spec.retry.maxAttempts", 21, "spec.retry.maxAttempts"),
    (
        "retry-timeout-zero",
        J,
        "spec.retry.requestTimeoutSeconds",
        0,
        "spec.retry.requestTimeoutSeconds",
    ),
    ("backoff-base-zero", J, "spec.retry.backoffBaseSeconds", 0, "spec.retry.backoffBaseSeconds"),
    ("backoff-limit-negative", J, "spec.backoffLimitPerIndex", -1, "spec.backoffLimitPerIndex"),
    ("backoff-limit-high", J, "spec.backoffLimitPerIndex", 101, "spec.backoffLimitPerIndex"),
    ("ttl-negative", J, "spec.ttlSecondsAfterFinished", -1, "spec.ttlSecondsAfterFinished"),
    (
        "pull-policy-unknown",
        J,
        "spec.template.imagePullPolicy",
        "Sometimes",
        "spec.template.imagePullPolicy",
    ),
    (
        "toleration-effect",
        J,
        "spec.template.tolerations[0].effect",
        "Nope",
        "spec.template.tolerations[0].effect",
    ),
    ("env-name-empty", J, "spec.template.env[0].name", "", "spec.template.env[0].name"),
    ("sources-empty", D, "spec.sources", [], "spec.sources"),
    ("dataset-kind-unknown", D, "spec.kind", "ppo", "spec.kind"),
    ("dataset-format-unknown", D, "spec.format", "axolotl", "spec.format"),
    ("dedup-unknown", D, "spec.filters.dedup", "fuzzy", "spec.filters.dedup"),
    ("min-chars-negative", D, "spec.filters.minResponseChars", -1, "spec.filters.minResponseChars"),
    ("max-chars-zero", D, "spec.filters.maxResponseChars", 0, "spec.filters.maxResponseChars"),
    ("pass-rate-high", D, "spec.filters.passRate.max", 1.5, "spec.filters.passRate.max"),
    (
        "balance-zero",
        D,
        "spec.filters.balance",
        {"by": "t", "maxPerGroup": 0},
        "spec.filters.balance.maxPerGroup",
    ),
    (
        "quality-gap-zero",
        D,
        "spec.pairing.minQualityDifference",
        0,
        "spec.pairing.minQualityDifference",
    ),
    ("pairs-zero", D, "spec.pairing.maxPairsPerPrompt", 0, "spec.pairing.maxPairsPerPrompt"),
    ("validation-one", D, "spec.split.validationFraction", 1.0, "spec.split.validationFraction"),
    ("file-format-unknown", D, "spec.output.fileFormat", "csv", "spec.output.fileFormat"),
    ("rows-per-file-zero", D, "spec.output.rowsPerFile", 0, "spec.output.rowsPerFile"),
]

WRONG_TYPE = [
    ("repeats-string", J, "spec.sampling.numRepeats", "four", "spec.sampling.numRepeats"),
    ("parallelism-float", J, "spec.parallelism", 2.5, "spec.parallelism"),
    ("input-string", J, "spec.input", "s3://bucket/tasks.jsonl", "spec.input"),
    ("suspend-string", J, "spec.suspend", "maybe", "spec.suspend"),
    ("verifier-config-list", J, "spec.verifier.config", [1, 2], "spec.verifier.config"),
    (
        "reward-weight-string",
        J,
        "spec.reward.components.accuracy",
        "heavy",
        "spec.reward.components.accuracy",
    ),
    ("node-selector-list", J, "spec.template.nodeSelector", ["a"], "spec.template.nodeSelector"),
    (
        "tolerations-object",
        J,
        "spec.template.tolerations",
        {"key": "gpu"},
        "spec.template.tolerations",
    ),
    ("s3-endpoint-number", J, "spec.s3", {"endpointURL": 5}, "spec.s3.endpointURL"),
    ("sources-object", D, "spec.sources", {"rolloutJobRef": "a"}, "spec.sources"),
    ("min-reward-string", D, "spec.filters.minReward", "high", "spec.filters.minReward"),
]

MISSING = [
    ("no-input", J, "spec.input", DELETE, "spec.input"),
    ("no-policy", J, "spec.policy", DELETE, "spec.policy"),
    ("no-verifier", J, "spec.verifier", DELETE, "spec.verifier"),
    ("no-output", J, "spec.output", DELETE, "spec.output"),
    ("no-output-uri", J, "spec.output.uri", DELETE, "spec.output.uri"),
    (
        "no-secret-key",
        J,
        "spec.policy.apiKeySecretRef.key",
        DELETE,
        "spec.policy.apiKeySecretRef.key",
    ),
    ("no-dataset-format", D, "spec.format", DELETE, "spec.format"),
    ("no-dataset-kind", D, "spec.kind", DELETE, "spec.kind"),
]

UNKNOWN_FIELD = [
    ("spec-extra", J, "spec.replicas", 3, "spec.replicas"),
    ("sampling-typo", J, "spec.sampling.numRepeat", 3, "spec.sampling.numRepeat"),
    ("plaintext-api-key", J, "spec.policy.apiKey", "sk-plain", "spec.policy.apiKey"),
    ("output-bucket", J, "spec.output.bucket", "b", "spec.output.bucket"),
    ("retry-typo", J, "spec.retry.maxAttempt", 3, "spec.retry.maxAttempt"),
    ("snake-case-name", J, "spec.sampling.num_repeats", 3, "spec.sampling.num_repeats"),
    ("top-level-extra", J, "specs", {}, "specs"),
    ("source-extra", D, "spec.sources[0].name", "x", "spec.sources[0].name"),
    ("filters-typo", D, "spec.filters.minRewards", 0.5, "spec.filters.minRewards"),
]

CONFLICT = [
    ("policy-url-and-embedded", J, "spec.policy.embedded", "smollm2", "spec.policy"),
    ("policy-neither", J, "spec.policy", {"model": "m"}, "spec.policy"),
    ("policy-url-without-model", J, "spec.policy.model", DELETE, "spec.policy"),
    ("verifier-builtin-and-url", J, "spec.verifier.url", "http://v:8000", "spec.verifier"),
    ("verifier-none", J, "spec.verifier", {"port": 8000}, "spec.verifier"),
    (
        "budget-below-timeout",
        J,
        "spec.retry",
        {"requestTimeoutSeconds": 100, "maxRetrySeconds": 10},
        "spec.retry",
    ),
    ("source-both", D, "spec.sources[0].uri", "s3://b/r/", "spec.sources[0]"),
    ("source-neither", D, "spec.sources[0]", {}, "spec.sources[0]"),
    (
        "pass-rate-inverted",
        D,
        "spec.filters.passRate",
        {"min": 0.8, "max": 0.2},
        "spec.filters.passRate",
    ),
    ("reward-inverted", D, "spec.filters", {"minReward": 0.9, "maxReward": 0.1}, "spec.filters"),
    ("pairing-not-dpo", D, "spec.kind", "sft", "spec"),
    ("nemo-gym-dpo", D, "spec.format", "nemo-gym", "spec"),
]

ALL_CASES = OUT_OF_RANGE + WRONG_TYPE + MISSING + UNKNOWN_FIELD + CONFLICT

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _STEP.findall(path)]


def mutated(kind: str, path: str, value: Any) -> dict[str, Any]:
    """A deep copy of the good body of `kind` with one change."""
    body = copy.deepcopy(GOOD_JOB if kind == J else GOOD_DATASET)
    *parents, last = _steps(path)
    node: Any = body
    for step in parents:
        if isinstance(step, str) and step not in node:
            node[step] = {}
        node = node[step]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return body

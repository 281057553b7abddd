"""Prometheus metric definitions, one place. Names gymops_<noun>_<unit>; no per-task labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
REWARD_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

ROLLOUTS = Counter(
    "gymops_rollouts_total",
    "Rollouts finished, by outcome (completed, truncated, failed, input_error).",
    ["outcome"],
)
MODEL_LATENCY = Histogram(
    "gymops_model_request_seconds",
    "Latency of one model request attempt (successful or not).",
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "gymops_tokens_total", "Tokens reported by the model, by kind (prompt, completion).", ["kind"]
)
REWARDS = Histogram("gymops_reward", "Rewards of completed rollouts.", buckets=REWARD_BUCKETS)
RETRIES = Counter(
    "gymops_retries_total",
    "Retried requests, by target (model, verifier) and reason (error class).",
    ["target", "reason"],
)
IN_FLIGHT = Gauge(
    "gymops_model_requests_in_flight",
    "Model requests currently in flight (read from the AIMD window at scrape time).",
)
WINDOW = Gauge(
    "gymops_concurrency_window",
    "Current limit of model requests in flight (the fixed setting cut on 429s, or auto's).",
)
VERIFIER_LATENCY = Histogram(
    "gymops_verifier_request_seconds",
    "Latency of one /verify request attempt.",
    buckets=LATENCY_BUCKETS,
)
PARTS_COMMITTED = Counter("gymops_parts_committed_total", "Output parts committed.")
# Label children bound once: the generator updates them per rollout, labels() costs a lookup.
ROLLOUTS_COMPLETED = ROLLOUTS.labels("completed")
ROLLOUTS_TRUNCATED = ROLLOUTS.labels("truncated")
ROLLOUTS_FAILED = ROLLOUTS.labels("failed")
ROLLOUTS_INPUT_ERROR = ROLLOUTS.labels("input_error")
PROMPT_TOKENS = TOKENS.labels("prompt")
COMPLETION_TOKENS = TOKENS.labels("completion")

VERIFIER_VERIFICATIONS = Counter(
    "gymops_verifier_verifications_total",
    "Verifier server /verify answers, by outcome (scored, unscorable, bad_request, timeout, "
    "worker_crash).",
    ["outcome"],
)
VERIFIER_CHECK_SECONDS = Histogram(
    "gymops_verifier_check_seconds",
    "Verifier server: time to score one /verify request (queueing in the pool included).",
    buckets=LATENCY_BUCKETS,
)
VERIFIER_IN_FLIGHT = Gauge(
    "gymops_verifier_requests_in_flight", "Verifier server: /verify requests being scored."
)
VERIFIER_POOL_RESTARTS = Counter(
    "gymops_verifier_pool_restarts_total",
    "Verifier server: process pools recreated after a crashed or stuck worker.",
)
VERIFIER_TOOL_CALLS = Counter(
    "gymops_verifier_tool_calls_total",
    "Verifier server: tool calls, by tool and outcome (ok, error).",
    ["tool", "outcome"],
)
VERIFIER_SESSIONS = Gauge(
    "gymops_verifier_sessions", "Verifier server: sessions currently held in memory."
)

OPERATOR_RESOURCES = Gauge(
    "gymops_operator_resources",
    "RolloutJobs and Datasets seen by the operator, by kind and phase.",
    ["kind", "phase"],
)
OPERATOR_JOB_DURATION = Histogram(
    "gymops_operator_job_duration_seconds",
    "Start-to-finish time of finished RolloutJobs and Datasets, by kind and final phase.",
    ["kind", "phase"],
    buckets=(10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400),
)
OPERATOR_RECONCILE_ERRORS = Counter(
    "gymops_operator_reconcile_errors_total",
    "Handler runs that raised, by kind and handler.",
    ["kind", "handler"],
)
OPERATOR_RECONCILE_LATENCY = Histogram(
    "gymops_operator_reconcile_seconds",
    "Duration of one handler run, by kind and handler.",
    ["kind", "handler"],
    buckets=LATENCY_BUCKETS,
)
OPERATOR_CHILDREN_CREATED = Counter(
    "gymops_operator_children_created_total",
    "Kubernetes objects created by the operator, by child kind.",
    ["child"],
)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve /metrics of this process's default registry on a background thread."""
    start_http_server(port, addr=addr)

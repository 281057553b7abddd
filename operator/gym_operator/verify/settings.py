"""What a verifier server runs with: the built-in, its checked config, its worker count and limits.

`gymops verify-server` and `gymops verifier-eval` read a built-in's config the same way, through
`load_config` (JSON text or `@file`, checked against the built-in's config model); a config that
cannot be used is a `BadVerifierConfig` (a BadSpec) naming the flag and the key.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_operator import errors
from gym_operator.api.rolloutjob import BUILTIN_VERIFIERS
from gym_operator.api.verifiers import check_config

SANDBOXED_BUILTINS = frozenset({"code_execution"})

CGROUP_ROOT = Path("/sys/fs/cgroup")


class BadVerifierConfig(errors.BadSpec, ValueError):
    """A verifier's flags or config that cannot be used; the message names the key."""


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The container's CPU limit (cgroup v2 cpu.max or v1 CFS quota), None when unlimited."""
    try:
        if (root / "cpu.max").exists():
            quota, period = (root / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        if quota_us <= 0:
            return None
        return quota_us / int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a container CPU limit."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = cgroup_cpu_limit()
    if limit is not None:
        return max(1, min(cores or 1, math.ceil(limit)))
    return max(1, cores or 1)


@dataclass(frozen=True)
class VerifierSettings:
    """What the server verifies with, and its limits."""

    builtin: str
    config: dict[str, Any] = field(default_factory=dict)
    workers: int = field(default_factory=available_cpus)
    timeout_seconds: float = 60.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_sessions: int = 100_000
    max_batch: int = 16
    tool_timeout_seconds: float = 60.0
    body_timeout_seconds: float = 30.0
    """A request body not received within this time is answered 408 and its connection closed."""
    idle_timeout_seconds: float = 75.0
    """A connection with no complete request for this long is closed (slow or stalled headers)."""

    def __post_init__(self) -> None:
        """BadVerifierConfig for a sandboxed verifier's limits out of range (before serving)."""
        if self.builtin in SANDBOXED_BUILTINS:
            from gym_operator.verify.base import VerifierError
            from gym_operator.verify.builtins.code_execution import limits_from

            try:
                limits_from(self.config)
            except VerifierError as exc:
                raise BadVerifierConfig(str(exc)) from None


def load_config(builtin: str, value: str | None) -> dict[str, Any]:
    """The checked config of `builtin` from `--config` (JSON or `@file`)."""
    if builtin not in BUILTIN_VERIFIERS:
        known = ", ".join(BUILTIN_VERIFIERS)
        raise BadVerifierConfig(f"--verifier: unknown verifier {builtin!r}; built-ins: {known}")
    if not value:
        text = "{}"
    elif value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise BadVerifierConfig(f"--config {value}: cannot read it: {exc}") from None
    else:
        text = value
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise BadVerifierConfig(f"--config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise BadVerifierConfig("--config must be a JSON object")
    problems = check_config(builtin, config)
    if problems:
        raise BadVerifierConfig("--config: " + "; ".join(problems))
    return config


def settings_from(
    builtin: str, config: str | None, workers: int | None, timeout_seconds: float
) -> VerifierSettings:
    """The settings of a server of `builtin` from command-line values."""
    return VerifierSettings(
        builtin=builtin,
        config=load_config(builtin, config),
        workers=workers or available_cpus(),
        timeout_seconds=timeout_seconds,
    )

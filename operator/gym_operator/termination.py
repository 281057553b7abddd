"""A worker pod's last word: why it stopped, in the file Kubernetes shows as the container's
termination message (`kubectl describe pod`, and the operator quotes it in status.message)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from gym_operator import redaction

DEFAULT_PATH = "/dev/termination-log"
"""The container's default `terminationMessagePath`; the kubelet creates the file."""
MESSAGE_LIMIT = 4096
"""Kubernetes keeps at most 4096 bytes of a container's termination message."""


def write_termination_message(path: str, reason: str) -> None:
    """Write `reason` to the termination-message file if it exists (only in a pod, never made)."""
    target = Path(path)
    if not target.is_file():
        return
    with contextlib.suppress(OSError):
        target.write_bytes(redaction.redact_text(reason).encode("utf-8")[:MESSAGE_LIMIT])

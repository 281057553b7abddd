"""A worker pod's last word: its exit code, and why it stopped in its termination message.

The message file is the one Kubernetes shows as the container's termination message (`kubectl
describe pod`, and the operator quotes it in status.message).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from gym_operator import errors, redaction
from gym_operator.storage import errors as storage_errors

log = logging.getLogger(__name__)

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


def run_worker(work: Callable[[], None], termination_log: str, what: str) -> errors.ExitCode:
    """Run a worker's `work`; the exit code its outcome calls for (see `gym_operator.errors`).

    A `GymopsError` ends with its own code and message; any other exception is unexpected
    (ERROR, logged with its traceback, or the one-line explanation of a storage error). Unless
    the worker finished or was interrupted, the reason goes to the termination message.
    """
    try:
        work()
    except errors.GymopsError as exc:
        code, reason = exc.exit_code, exc.reason()
        log.log(logging.ERROR if code.leaves_reason else logging.WARNING, "%s", reason)
    except Exception as exc:
        code, reason = errors.ExitCode.ERROR, _unexpected(exc, what)
    else:
        return errors.ExitCode.OK
    if code.leaves_reason:
        write_termination_message(termination_log, reason)
    return code


def _unexpected(exc: Exception, what: str) -> str:
    """Why `what` failed on an exception nobody classified (logged here): a storage error as
    the object, the cause and the fix, then the error itself; anything else with its traceback."""
    cause = f"{type(exc).__name__}: {exc}"
    explained = storage_errors.explain(exc)
    if explained is None:
        log.exception("%s failed", what)
        return f"{what} failed: {cause}"
    reason = f"{what} failed: {explained} ({cause})"
    log.error("%s", reason)
    return reason

"""The errors that end a worker, each with the exit code it ends with (imports nothing of ours).

A worker (`gymops generate`, `build-dataset`, `verify-server`, and `gymops run` locally) raises a
`GymopsError` subclass for every way it can fail on purpose; `termination.run_worker` turns it into
the exit code and the pod's termination message. Anything else is an unexpected error: exit 1,
retried by the Job, since a fault nobody classified (a manifest that does not parse, a dropped
connection) is more likely passing than permanent. The generator Job's podFailurePolicy is built
from `ExitCode`, so the codes and what Kubernetes does with them cannot drift apart.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """How a worker process ends; the generator Job's podFailurePolicy acts on these values."""

    OK = 0
    """Finished: the shard (or dataset) is complete."""
    ERROR = 1
    """Unexpected error: retry the pod; the work committed so far is kept."""
    BAD_SPEC = 2
    """The spec or the arguments cannot be used: retrying cannot help (the index fails)."""
    INTERRUPTED = 3
    """Stopped by SIGTERM/SIGINT: what was done is committed, the rest resumes on restart."""
    CONFLICT = 4
    """The output prefix holds another spec's results: retrying cannot help (the index fails)."""
    ENDPOINT_DOWN = 5
    """The model or verifier endpoint stayed down past the wait: retry the pod later."""
    TOO_MANY_FAILURES = 6
    """Every shard finished, and the job failed by its failurePolicy (the Job fails)."""

    @property
    def leaves_reason(self) -> bool:
        """Whether a worker ending so writes why to its termination message."""
        return self not in (ExitCode.OK, ExitCode.INTERRUPTED)


class GymopsError(Exception):
    """A failure the worker expects; `exit_code` says how the process ends on it."""

    exit_code: ClassVar[ExitCode] = ExitCode.ERROR

    def reason(self) -> str:
        """Why the worker stopped, as its log and termination message say it."""
        return str(self)


class BadSpec(GymopsError):
    """The spec, an argument or an object the spec names cannot be used; the message says which."""

    exit_code = ExitCode.BAD_SPEC


class Interrupted(GymopsError):
    """Stopped on request; what was done is kept."""

    exit_code = ExitCode.INTERRUPTED


class OutputConflict(GymopsError):
    """The output prefix belongs to another spec."""

    exit_code = ExitCode.CONFLICT


class EndpointUnavailable(GymopsError):
    """The model or verifier endpoint cannot be used now; a later run may succeed."""

    exit_code = ExitCode.ENDPOINT_DOWN


class JobFailed(GymopsError):
    """The job ended failed by its failurePolicy (too many failure rows); the message says why."""

    exit_code = ExitCode.TOO_MANY_FAILURES


def exit_code_of(error: BaseException) -> ExitCode:
    """The exit code a worker ends with on `error` (ERROR for one nobody classified)."""
    return error.exit_code if isinstance(error, GymopsError) else ExitCode.ERROR

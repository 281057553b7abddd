"""The phase a batch/v1 Job and its pods imply, with stuck pods lifted into the message.

Pure functions over plain dicts (the API bodies); no kopf, no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gym_operator.api import Phase
from gym_operator.controller import constants as c
from gym_operator.controller.conditions import Observed
from gym_operator.controller.podstate import (
    exit_note,
    last_failed_pod,
    pods_problem_message,
    termination_message,
)
from gym_operator.errors import ExitCode

Body = Mapping[str, Any]


def _condition_true(obj: Body, type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def _too_many_failures(pods: list[Body]) -> str:
    """The reason a generator gave for ending the job over its failurePolicy ('' if none did)."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode") == ExitCode.TOO_MANY_FAILURES:
                return termination_message(pod) or "too many rollouts failed (failurePolicy)"
    return ""


def job_state(
    job: Body | None,
    pods: Iterable[Body],
    what: str = "pods",
    support_pods: Iterable[Body] = (),
) -> Observed:
    """The phase a batch/v1 Job implies; stuck pods (its own, then e.g. the verifier's) lifted
    into the message."""
    pods = list(pods)
    if job is None:
        return Observed(Phase.PENDING, c.REASON_CREATED, f"creating the {what}")
    if _condition_true(job, "Complete") or _condition_true(job, "SuccessCriteriaMet"):
        return Observed(Phase.SUCCEEDED, c.REASON_COMPLETE, f"all {what} completed")
    failed = _condition_true(job, "Failed") or _condition_true(job, "FailureTarget")
    if failed:
        too_many = _too_many_failures(pods)
        if too_many:
            return Observed(Phase.FAILED, c.REASON_TOO_MANY_FAILURES, too_many)
        message = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".rstrip(": ")
        indexes = (job.get("status") or {}).get("failedIndexes")
        if indexes:
            message += f"; failed shards: {indexes}"
        last = last_failed_pod(pods)
        if last is not None:
            note = exit_note(last)
            if note:
                message += f"; {note}"
            message += f"; logs: kubectl logs pod/{last['metadata']['name']}"
        return Observed(Phase.FAILED, c.REASON_JOB_FAILED, message)
    if (job.get("spec") or {}).get("suspend") or _condition_true(job, "Suspended"):
        return Observed(
            Phase.SUSPENDED, c.REASON_SUSPENDED, "suspended; set spec.suspend false to resume"
        )
    return _active_state(job, pods, what, list(support_pods))


def _active_state(job: Body, pods: list[Body], what: str, support_pods: list[Body]) -> Observed:
    status = job.get("status") or {}
    active = int(status.get("active") or 0)
    succeeded = int(status.get("succeeded") or 0)
    failed = int(status.get("failed") or 0)
    completions = (job.get("spec") or {}).get("completions") or 1
    problem = pods_problem_message(pods) or pods_problem_message(support_pods)
    running_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    started = bool(running_pods) or succeeded > 0 or int(status.get("ready") or 0) > 0
    message = f"{succeeded}/{completions} {what} done, {active} active"
    if failed:
        message += f", {failed} failed attempt(s) retried"
        last = last_failed_pod(pods)
        note = exit_note(last) if last is not None else ""
        if note:
            message += f"; last: {note}"
    if problem is not None:
        reason, problem_message = problem
        phase = Phase.RUNNING if started else Phase.PENDING
        return Observed(phase, reason, problem_message)
    if started:
        return Observed(Phase.RUNNING, c.REASON_RUNNING, message)
    return Observed(Phase.PENDING, c.REASON_PODS_PENDING, message)


def admission_state(observed: Observed, spec_suspend: bool, queue: str | None) -> Observed:
    """A Job that Kueue holds suspended is waiting for admission, not suspended by the user."""
    if observed.phase != Phase.SUSPENDED or spec_suspend or not queue:
        return observed
    message = f"waiting for Kueue to admit the Jobs (queue {queue})"
    return Observed(Phase.PENDING, c.REASON_WAITING_FOR_ADMISSION, message)

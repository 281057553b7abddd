"""Status logic: phase from child state, metav1 conditions, and a patch written only on change.

Pure functions over plain dicts (the API bodies); no kopf, no client.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gym_operator.controller import constants as c

Body = Mapping[str, Any]
JOB_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
TERMINATION_MESSAGE_SHOWN = 500
"""How much of a failed pod's termination message goes into status.message."""


def now_iso(now: datetime.datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with second precision, as Kubernetes writes them."""
    moment = now or datetime.datetime.now(tz=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    """Parse an RFC 3339 timestamp (None stays None)."""
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Observed:
    """Where a resource is, and why."""

    phase: str
    reason: str
    message: str


def set_condition(
    conditions: Iterable[Mapping[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """Conditions with `type_` set; lastTransitionTime moves only when the status flips."""
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        if cond.get("type") != type_:
            out.append(dict(cond))
            continue
        found = True
        moved = cond.get("status") != status
        new = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now if moved else cond.get("lastTransitionTime", now),
        }
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    if not found:
        new = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }
        if generation is not None:
            new["observedGeneration"] = generation
        out.append(new)
    return out


def phase_conditions(
    existing: Iterable[Mapping[str, Any]],
    observed: Observed,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """The current phase's condition True; conditions of phases left behind turn False."""
    current_type = c.CONDITION_BY_PHASE[observed.phase]
    conditions = [dict(cond) for cond in existing]
    for cond in list(conditions):
        type_ = cond.get("type")
        if type_ != current_type and type_ in c.CONDITION_BY_PHASE.values():
            if cond.get("status") == "True":
                conditions = set_condition(
                    conditions, str(type_), "False", observed.reason, observed.message,
                    generation, now,
                )  # fmt: skip
    return set_condition(
        conditions, current_type, "True", observed.reason, observed.message, generation, now
    )


def desired_status(
    current: Mapping[str, Any],
    observed: Observed,
    generation: int | None,
    now: str,
    extra: Mapping[str, Any] | None = None,
    refused: list[str] | None = None,
    server: ServerState | None = None,
) -> dict[str, Any]:
    """The full status: phase, reason, message, times, conditions (+ SpecAccepted if refused,
    + ServerReady with a managed model server)."""
    status = dict(current)
    status.update(
        {
            "phase": observed.phase,
            "reason": observed.reason,
            "message": observed.message,
            "observedGeneration": generation,
            "conditions": phase_conditions(
                current.get("conditions") or [], observed, generation, now
            ),
        }
    )
    if observed.phase in (c.RUNNING, c.SUCCEEDED, c.FAILED) and not status.get("startTime"):
        status["startTime"] = now
    if observed.phase in (c.SUCCEEDED, c.FAILED) and not status.get("completionTime"):
        status["completionTime"] = now
    status.update(extra or {})
    if refused is not None:
        status["conditions"] = spec_condition(status["conditions"], refused, generation, now)
    if server is not None:
        status["conditions"] = server_condition(status["conditions"], server, generation, now)
    return {key: value for key, value in status.items() if value is not None}


def spec_condition(
    conditions: Iterable[Mapping[str, Any]],
    refused: list[str],
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """SpecAccepted: False naming the fields when a running resource's spec was changed."""
    conditions = [dict(cond) for cond in conditions]
    present = any(cond.get("type") == c.CONDITION_SPEC_ACCEPTED for cond in conditions)
    if not refused and not present:
        return conditions
    if refused:
        message = (
            f"cannot change {', '.join(refused)} while running; "
            "revert the change, or delete and re-create the resource"
        )
        return set_condition(
            conditions, c.CONDITION_SPEC_ACCEPTED, "False", c.REASON_SPEC_CHANGE_REFUSED,
            message, generation, now,
        )  # fmt: skip
    return set_condition(
        conditions, c.CONDITION_SPEC_ACCEPTED, "True", c.REASON_SPEC_CHANGE_APPLIED,
        "spec accepted", generation, now,
    )  # fmt: skip


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch turning `current` into `desired` (top-level keys); empty when equal."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if current.get(key) != value:
            patch[key] = value
    for key in current:
        if key not in desired:
            patch[key] = None
    return patch


def _condition_true(obj: Body, type_: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return dict(cond)
    return None


def pod_problem(pod: Body) -> tuple[str, str] | None:
    """(reason, detail) when a pod is stuck: image pull, unschedulable, crash loop, bad config."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            reason = cond.get("reason") or "Unschedulable"
            return reason, cond.get("message") or ""
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in c.POD_PROBLEM_REASONS:
            return str(reason), waiting.get("message") or ""
    return None


def pod_label(pod: Body) -> str:
    """`<pod name> (shard N)` for messages."""
    meta = pod.get("metadata") or {}
    index = (meta.get("annotations") or {}).get(JOB_INDEX_ANNOTATION)
    name = meta.get("name", "?")
    return f"{name} (shard {index})" if index is not None else str(name)


def pods_problem_message(pods: Iterable[Body]) -> tuple[str, str] | None:
    """(reason, message) of the first stuck pod, e.g. `ImagePullBackOff on gen-3 (shard 3)`."""
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        if (pod.get("status") or {}).get("phase") not in (None, "Pending", "Running"):
            continue
        found = pod_problem(pod)
        if found is not None:
            reason, detail = found
            message = f"{reason} on {pod_label(pod)}"
            return reason, f"{message}: {detail}" if detail else message
    return None


def last_failed_pod(pods: Iterable[Body]) -> Body | None:
    """The most recently created failed pod (kept for its logs)."""
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    if not failed:
        return None
    return max(failed, key=_creation_order)


def termination_message(pod: Body) -> str:
    """What the pod's failed container wrote to its termination-message file ('' if nothing)."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        for state in (cs.get("state"), cs.get("lastState")):
            terminated = (state or {}).get("terminated") or {}
            message = str(terminated.get("message") or "").strip()
            if terminated.get("exitCode") and message:
                return message[:TERMINATION_MESSAGE_SHOWN]
    return ""


def exit_note(pod: Body) -> str:
    """`<pod> (shard N) exited: <why>`, '' when the pod left no termination message."""
    why = termination_message(pod)
    return f"{pod_label(pod)} exited: {why}" if why else ""


def _too_many_failures(pods: list[Body]) -> str:
    """The reason a generator gave for ending the job over its failurePolicy ('' if none did)."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("exitCode") == c.EXIT_CODE_TOO_MANY_FAILURES:
                return termination_message(pod) or "too many rollouts failed (failurePolicy)"
    return ""


def _creation_order(pod: Body) -> tuple[str, int]:
    """creationTimestamp has second precision; the resourceVersion breaks ties."""
    meta = pod.get("metadata") or {}
    version = str(meta.get("resourceVersion") or "0")
    return str(meta.get("creationTimestamp") or ""), int(version) if version.isdigit() else 0


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
        return Observed(c.PENDING, c.REASON_CREATED, f"creating the {what}")
    if _condition_true(job, "Complete") or _condition_true(job, "SuccessCriteriaMet"):
        return Observed(c.SUCCEEDED, c.REASON_COMPLETE, f"all {what} completed")
    failed = _condition_true(job, "Failed") or _condition_true(job, "FailureTarget")
    if failed:
        too_many = _too_many_failures(pods)
        if too_many:
            return Observed(c.FAILED, c.REASON_TOO_MANY_FAILURES, too_many)
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
        return Observed(c.FAILED, c.REASON_JOB_FAILED, message)
    if (job.get("spec") or {}).get("suspend") or _condition_true(job, "Suspended"):
        return Observed(
            c.SUSPENDED, c.REASON_SUSPENDED, "suspended; set spec.suspend false to resume"
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
        phase = c.RUNNING if started else c.PENDING
        return Observed(phase, reason, problem_message)
    if started:
        return Observed(c.RUNNING, c.REASON_RUNNING, message)
    return Observed(c.PENDING, c.REASON_PODS_PENDING, message)


def changed_fields(
    applied: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "spec"
) -> list[str]:
    """Paths of differing fields (dict leaves), e.g. `spec.sampling.concurrency`."""
    paths: list[str] = []
    for key in sorted(set(applied) | set(current)):
        old, new = applied.get(key), current.get(key)
        if old == new:
            continue
        path = f"{prefix}.{key}"
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            paths.extend(changed_fields(old, new, path))
        else:
            paths.append(path)
    return paths


def refused_changes(applied: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Changed fields that may not change while a resource runs (all but suspend and the TTL)."""
    return [
        path
        for path in changed_fields(applied, current)
        if path.split(".")[1] not in c.MUTABLE_SPEC_FIELDS
    ]


def ttl_expired(status: Mapping[str, Any], ttl_seconds: int | None, now: datetime.datetime) -> bool:
    """True when a finished resource has outlived its ttlSecondsAfterFinished."""
    if ttl_seconds is None or status.get("phase") not in (c.SUCCEEDED, c.FAILED):
        return False
    finished = parse_time(status.get("completionTime"))
    if finished is None:
        return False
    return (now - finished).total_seconds() >= ttl_seconds


@dataclass(frozen=True)
class ServerState:
    """Whether a managed model server serves, and if not, why (lifted from its pods)."""

    ready: bool
    reason: str
    message: str
    timed_out: bool = False


def server_state(
    deployment: Body | None,
    pods: Iterable[Body],
    timeout_seconds: float,
    now: datetime.datetime,
) -> ServerState:
    """The model server's state: ready once a replica passes its readiness probe; otherwise
    the first stuck pod's reason (Unschedulable, image pull, CrashLoopBackOff), timed out when
    no replica was ready within `timeout_seconds` of the Deployment's creation."""
    if deployment is None:
        return ServerState(False, c.REASON_SERVER_STARTING, "creating the model server")
    status = deployment.get("status") or {}
    want = int((deployment.get("spec") or {}).get("replicas") or 1)
    ready = int(status.get("readyReplicas") or 0)
    if ready > 0:
        message = f"model server ready ({ready}/{want} replicas)"
        return ServerState(True, c.REASON_SERVER_READY, message)
    pods = list(pods)
    reason, detail = pods_problem_message(pods) or (
        c.REASON_SERVER_NOT_READY,
        _unready_detail(pods) or f"0/{want} replicas ready",
    )
    created = parse_time((deployment.get("metadata") or {}).get("creationTimestamp"))
    waited = (now - created).total_seconds() if created is not None else 0.0
    if waited >= timeout_seconds:
        message = f"model server not ready after {timeout_seconds:g}s: {detail}"
        return ServerState(False, reason, message, timed_out=True)
    return ServerState(False, reason, f"waiting for the model server: {detail}")


def _unready_detail(pods: list[Body]) -> str:
    """Why no server pod is ready: a container's (last) exit, else a Ready condition."""
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            last = (cs.get("state") or {}).get("terminated") or (
                (cs.get("lastState") or {}).get("terminated") or {}
            )
            if last:
                return f"{pod_label(pod)} {_exit_text(last, cs.get('restartCount', 0))}"
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "False":
                why = cond.get("message") or cond.get("reason") or "not ready"
                return f"{pod_label(pod)}: {why}"
    return ""


def _exit_text(terminated: Body, restarts: int) -> str:
    """`exited with code 1, restarted 3x: <the last line it wrote>`."""
    lines = str(terminated.get("message") or terminated.get("reason") or "").strip().splitlines()
    why = lines[-1].strip() if lines else ""  # a log's last line: the error a traceback ends in
    text = f"exited with code {terminated.get('exitCode')}, restarted {restarts}x"
    return f"{text}: {why[:TERMINATION_MESSAGE_SHOWN]}" if why else text


def server_condition(
    conditions: Iterable[Mapping[str, Any]],
    server: ServerState,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """The ServerReady condition from the model server's state."""
    return set_condition(
        conditions,
        c.CONDITION_SERVER_READY,
        "True" if server.ready else "False",
        server.reason,
        server.message,
        generation,
        now,
    )


def admission_state(observed: Observed, spec_suspend: bool, queue: str | None) -> Observed:
    """A Job that Kueue holds suspended is waiting for admission, not suspended by the user."""
    if observed.phase != c.SUSPENDED or spec_suspend or not queue:
        return observed
    message = f"waiting for Kueue to admit the Jobs (queue {queue})"
    return Observed(c.PENDING, c.REASON_WAITING_FOR_ADMISSION, message)

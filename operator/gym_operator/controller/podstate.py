"""Reading pods: why one is stuck, which failed last, what its container wrote when it exited.

Pure functions over pod bodies (plain dicts); no kopf, no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gym_operator.controller import constants as c

Body = Mapping[str, Any]
JOB_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
TERMINATION_MESSAGE_SHOWN = 500
"""How much of a failed pod's termination message goes into status.message."""


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


def _creation_order(pod: Body) -> tuple[str, int]:
    """creationTimestamp has second precision; the resourceVersion breaks ties."""
    meta = pod.get("metadata") or {}
    version = str(meta.get("resourceVersion") or "0")
    return str(meta.get("creationTimestamp") or ""), int(version) if version.isdigit() else 0

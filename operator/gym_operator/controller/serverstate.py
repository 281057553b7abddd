"""A managed model server's state: ready, starting, stuck (and why) or timed out.

Pure functions over the Deployment and its pods (plain dicts); no kopf, no client.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gym_operator.controller import constants as c
from gym_operator.controller.conditions import Aspect, server_aspect
from gym_operator.controller.podstate import (
    TERMINATION_MESSAGE_SHOWN,
    pod_label,
    pods_problem_message,
)
from gym_operator.controller.status import parse_time

Body = Mapping[str, Any]


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


def server_condition(server: ServerState) -> Aspect:
    """The ServerReady condition from the model server's state."""
    return server_aspect(server.ready, server.reason, server.message)

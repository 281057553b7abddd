"""The model server's state: ready on a ready replica, else its pods' reason, then the timeout."""

from __future__ import annotations

import datetime
from typing import Any

from gym_operator.api import Phase, RolloutJobStatus
from gym_operator.controller import constants as c
from gym_operator.controller import serverstate as st
from gym_operator.controller import status
from gym_operator.controller.conditions import Observed

CREATED = "2026-01-01T00:00:00Z"
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def deployment(ready: int = 0, replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": "j-server", "creationTimestamp": CREATED},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready} if ready else {},
    }


def server_pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j-server-abc"}, "status": {"phase": "Pending", **status}}


UNSCHEDULABLE = server_pod(
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
        }
    ]
)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_ready_replica_makes_the_server_ready() -> None:
    state = st.server_state(deployment(ready=1, replicas=2), [], 600, at(30))
    assert state.ready and state.reason == c.REASON_SERVER_READY
    assert "1/2" in state.message


def test_unschedulable_gpu_request_is_named_while_pending() -> None:
    state = st.server_state(deployment(), [UNSCHEDULABLE], 600, at(30))
    assert not state.ready and not state.timed_out
    assert state.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in state.message


def test_image_pull_error_is_named() -> None:
    pod = server_pod(
        containerStatuses=[
            {"name": "server", "state": {"waiting": {"reason": "ErrImagePull", "message": "no"}}}
        ]
    )
    assert st.server_state(deployment(), [pod], 600, at(30)).reason == "ErrImagePull"


def test_crash_loop_fails_after_the_startup_timeout_with_the_pods_reason() -> None:
    pod = server_pod(
        phase="Running",
        containerStatuses=[
            {
                "name": "server",
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {
                    "terminated": {
                        "exitCode": 1,
                        "message": "Traceback (most recent call last):\n  File x\n"
                        "torch.OutOfMemoryError: CUDA out of memory\n",
                    }
                },
            }
        ],
    )
    before = st.server_state(deployment(), [pod], 600, at(599))
    assert not before.timed_out and before.reason == "CrashLoopBackOff"
    after = st.server_state(deployment(), [pod], 600, at(600))
    assert after.timed_out and after.reason == "CrashLoopBackOff"
    assert after.message.startswith("model server not ready after 600s: CrashLoopBackOff")


def test_a_crashed_servers_last_line_is_its_reason() -> None:
    pod = server_pod(
        phase="Running",
        containerStatuses=[
            {
                "name": "server",
                "restartCount": 2,
                "state": {"terminated": {"exitCode": 1, "message": "loading\nOSError: no GPU\n"}},
            }
        ],
    )
    state = st.server_state(deployment(), [pod], 600, at(30))
    assert state.message == (
        "waiting for the model server: j-server-abc exited with code 1, restarted 2x: "
        "OSError: no GPU"
    )


def test_a_server_that_never_answers_says_why_from_its_ready_condition() -> None:
    pod = server_pod(
        phase="Running",
        conditions=[
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "message": "containers with unready status"},
        ],
        containerStatuses=[{"name": "server", "state": {"running": {}}, "ready": False}],
    )
    state = st.server_state(deployment(), [pod], 60, at(61))
    assert state.timed_out and state.reason == c.REASON_SERVER_NOT_READY
    assert "containers with unready status" in state.message


def test_server_ready_condition_follows_the_state() -> None:
    waiting = st.server_state(deployment(), [UNSCHEDULABLE], 600, at(1))
    first = status.desired_status(
        RolloutJobStatus,
        {},
        Observed(Phase.PENDING, waiting.reason, waiting.message),
        1,
        CREATED,
        aspects=[st.server_condition(waiting)],
    ).wire()
    (cond,) = [x for x in first["conditions"] if x["type"] == c.CONDITION_SERVER_READY]
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    ready = st.server_state(deployment(ready=1), [], 600, at(2))
    later = status.desired_status(
        RolloutJobStatus,
        first,
        Observed(Phase.PENDING, c.REASON_CREATED, "x"),
        1,
        "2026-01-01T00:00:02Z",
        aspects=[st.server_condition(ready)],
    ).wire()
    (cond,) = [x for x in later["conditions"] if x["type"] == c.CONDITION_SERVER_READY]
    assert (cond["status"], cond["lastTransitionTime"]) == ("True", "2026-01-01T00:00:02Z")

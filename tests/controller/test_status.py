"""Status logic: Job and pod state to phase, aspect conditions, and patches only on change."""

from __future__ import annotations

import copy
import datetime

from fakekube import merge

from gym_operator.api import Phase, RolloutJobStatus
from gym_operator.controller import conditions as cond
from gym_operator.controller import constants as c
from gym_operator.controller import jobstate, podstate
from gym_operator.controller import status as st
from gym_operator.controller.conditions import Observed
from gym_operator.errors import ExitCode

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def job(conditions: list[dict] | None = None, suspend: bool = False, **status: object) -> dict:
    return {
        "spec": {"completions": 2, "suspend": suspend},
        "status": {**status, "conditions": conditions or []},
    }


def pod(name: str, phase: str = "Pending", waiting: str | None = None, **extra: object) -> dict:
    container = {"name": "generator", "state": {"waiting": {"reason": waiting}} if waiting else {}}
    return {
        "metadata": {
            "name": name,
            "annotations": {podstate.JOB_INDEX_ANNOTATION: name[-1]},
            "creationTimestamp": extra.get("created", NOW),
        },
        "status": {"phase": phase, "containerStatuses": [container], **extra.get("status", {})},
    }


def test_no_job_yet_is_pending() -> None:
    assert jobstate.job_state(None, []).phase == Phase.PENDING


def test_complete_job_succeeds() -> None:
    observed = jobstate.job_state(job([{"type": "Complete", "status": "True"}]), [])
    assert observed.phase == Phase.SUCCEEDED


def test_failed_job_names_reason_shards_and_last_failed_pod() -> None:
    failed = job(
        [{"type": "Failed", "status": "True", "reason": "FailedIndexes", "message": "shard out"}],
        failedIndexes="1",
    )
    pods = [
        pod("gen-1", "Failed", created="2026-01-01T00:00:00Z"),
        pod("gen-x1", "Failed", created="2026-01-01T00:01:00Z"),
    ]
    observed = jobstate.job_state(failed, pods)
    assert observed.phase == Phase.FAILED
    assert "FailedIndexes: shard out" in observed.message
    assert "failed shards: 1" in observed.message
    assert "kubectl logs pod/gen-x1" in observed.message


def test_suspended_job() -> None:
    assert jobstate.job_state(job(suspend=True), []).phase == Phase.SUSPENDED


def test_image_pull_backoff_is_lifted_into_the_message() -> None:
    observed = jobstate.job_state(
        job(active=2), [pod("gen-0"), pod("gen-1", waiting="ImagePullBackOff")]
    )
    assert observed.phase == Phase.PENDING
    assert observed.reason == "ImagePullBackOff"
    assert observed.message.startswith("ImagePullBackOff on gen-1 (shard 1)")


def test_unschedulable_pod() -> None:
    stuck = pod("gen-0")
    stuck["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3"}
    ]
    observed = jobstate.job_state(job(active=1), [stuck])
    assert observed.reason == "Unschedulable" and "0/3" in observed.message


def test_running_with_retries() -> None:
    observed = jobstate.job_state(job(active=2, failed=1), [pod("gen-0", "Running")])
    assert observed.phase == Phase.RUNNING
    assert "1 failed attempt(s) retried" in observed.message


def by_type(conditions: list[dict]) -> dict[str, dict]:
    return {x["type"]: x for x in conditions}


def test_conditions_are_aspects_that_flip_and_keep_transition_times() -> None:
    pending = Observed(Phase.PENDING, "PodsPending", "waiting")
    first = by_type(cond.apply_all([], cond.phase_aspects(pending), 1, NOW))
    assert sorted(first) == sorted(c.ASPECT_CONDITIONS)
    assert first["Progressing"] == {
        "type": "Progressing",
        "status": "True",
        "reason": "PodsPending",
        "message": "waiting",
        "lastTransitionTime": NOW,
        "observedGeneration": 1,
    }
    assert {t: x["status"] for t, x in first.items() if x["status"] == "True"} == {
        "Progressing": "True"
    }
    running = Observed(Phase.RUNNING, "PodsRunning", "go")
    second = cond.apply_all(first.values(), cond.phase_aspects(running), 1, LATER)
    assert by_type(second)["Ready"]["status"] == "True"
    assert by_type(second)["Ready"]["lastTransitionTime"] == LATER
    assert by_type(second)["Progressing"]["lastTransitionTime"] == NOW  # stayed True
    assert by_type(second)["Complete"]["reason"] == "PodsPending"  # False since it was set
    third = cond.apply_all(second, cond.phase_aspects(running), 1, "2026-01-02T00:00:00Z")
    assert third == second
    done = by_type(
        cond.apply_all(
            second, cond.phase_aspects(Observed(Phase.SUCCEEDED, "JobComplete", "ok")), 1, LATER
        )
    )
    assert (done["Complete"]["status"], done["Ready"]["status"]) == ("True", "False")
    assert done["Progressing"]["status"] == "False" and done["Failed"]["status"] == "False"


def test_status_patch_is_empty_when_nothing_changed() -> None:
    observed = Observed(Phase.RUNNING, "PodsRunning", "go")
    model = RolloutJobStatus
    desired = st.desired_status(model, {}, observed, 3, NOW, {"output": {"uri": "s3://b/o/"}})
    assert desired.start_time == NOW and desired.observed_generation == 3
    wire = desired.wire()
    assert wire["phase"] == "Running" and wire["output"] == {"uri": "s3://b/o/"}
    assert st.status_patch(wire, st.desired_status(model, wire, observed, 3, LATER)) == {}
    done = Observed(Phase.SUCCEEDED, "JobComplete", "done")
    patch = st.status_patch(wire, st.desired_status(model, wire, done, 3, LATER))
    assert patch["phase"] == "Succeeded" and patch["completionTime"] == LATER
    assert "startTime" not in patch


def test_a_progress_field_that_goes_away_is_removed_from_the_stored_status() -> None:
    observed = Observed(Phase.RUNNING, "PodsRunning", "go")
    running = {"completed": 4, "etaSeconds": 12.0, "concurrencyLimit": 16}
    wire = st.desired_status(RolloutJobStatus, {}, observed, 1, NOW, {"progress": running}).wire()
    suspended = Observed(Phase.SUSPENDED, "Suspended", "held")
    now = {"progress": {"completed": 4}}  # no pod samples: no rate, no ETA, no limit
    desired = st.desired_status(RolloutJobStatus, wire, suspended, 1, LATER, now)
    patch = st.status_patch(wire, desired)
    assert patch["progress"] == {"etaSeconds": None, "concurrencyLimit": None}
    stored = copy.deepcopy(wire)
    merge(stored, patch)  # as the API server applies a merge patch
    assert stored["progress"] == desired.wire()["progress"]
    assert not {"etaSeconds", "concurrencyLimit"} & set(stored["progress"])


def test_status_fields_the_model_does_not_own_are_left_alone() -> None:
    current = {"phase": "Running", "viewerPath": "/rj/x"}
    desired = st.desired_status(
        RolloutJobStatus, current, Observed(Phase.RUNNING, "R", "m"), 1, NOW
    )
    assert "viewerPath" not in st.status_patch(current, desired)


def test_refused_changes_exclude_suspend_and_ttl() -> None:
    applied = {"parallelism": 2, "suspend": False, "sampling": {"concurrency": 8}}
    current = {
        "parallelism": 4,
        "suspend": True,
        "ttlSecondsAfterFinished": 60,
        "sampling": {"concurrency": 16},
    }
    assert st.refused_changes(applied, current) == ["spec.parallelism", "spec.sampling.concurrency"]
    conditions = cond.set_condition([], cond.spec_aspect(["spec.parallelism"]), 2, NOW)
    assert conditions[0]["type"] == "SpecAccepted" and conditions[0]["status"] == "False"
    assert "spec.parallelism" in conditions[0]["message"]
    assert cond.set_condition([], cond.spec_aspect([]), 2, NOW) == []
    accepted = cond.set_condition(conditions, cond.spec_aspect([]), 2, LATER)
    assert (accepted[0]["status"], accepted[0]["reason"]) == ("True", "SpecChangeApplied")


def test_ttl_expiry() -> None:
    finished = {"phase": "Succeeded", "completionTime": NOW}
    moment = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC)
    assert st.ttl_expired(finished, 60, moment)
    assert not st.ttl_expired(finished, 61, moment)
    assert not st.ttl_expired({"phase": "Running"}, 0, moment)
    assert not st.ttl_expired(finished, None, moment)


def test_last_failed_pod_breaks_same_second_ties_by_resource_version() -> None:
    older = pod("gen-a1", "Failed")
    newer = pod("gen-b1", "Failed")
    older["metadata"]["resourceVersion"] = "9"
    newer["metadata"]["resourceVersion"] = "12"
    assert podstate.last_failed_pod([newer, older]) is newer
    assert podstate.last_failed_pod([older, newer]) is newer


def exited(name: str, code: int, message: str, created: str = NOW) -> dict:
    """A failed pod whose container wrote `message` to its termination-message file."""
    failed = pod(name, "Failed", created=created)
    failed["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"exitCode": code, "message": message}
    }
    return failed


def test_failed_job_quotes_the_last_failed_pods_termination_message() -> None:
    failed = job([{"type": "Failed", "status": "True", "reason": "FailedIndexes"}])
    pods = [
        exited("gen-a0", 1, "older reason", created="2026-01-01T00:00:00Z"),
        exited(
            "gen-b0",
            5,
            "shard 0: endpoint unavailable: 50 rollouts in a row failed",
            created="2026-01-01T00:05:00Z",
        ),
    ]
    message = jobstate.job_state(failed, pods).message
    assert "gen-b0 (shard 0) exited: shard 0: endpoint unavailable" in message
    assert "older reason" not in message
    assert "kubectl logs pod/gen-b0" in message


def test_running_job_shows_why_its_last_attempt_failed() -> None:
    running = job(active=1, failed=1)
    pods = [exited("gen-a0", 5, "endpoint unavailable: " + "x" * 2000), pod("gen-b0", "Running")]
    observed = jobstate.job_state(running, pods)
    assert observed.phase == Phase.RUNNING
    assert "1 failed attempt(s) retried; last: gen-a0 (shard 0) exited: endpoint unavailable" in (
        observed.message
    )
    assert len(observed.message) < 700


def test_a_pod_that_exited_zero_or_wrote_nothing_adds_no_reason() -> None:
    running = job(active=1, failed=1)
    pods = [exited("gen-a0", 1, "  "), pod("gen-b0", "Running")]
    assert "last:" not in jobstate.job_state(running, pods).message


def test_a_stuck_verifier_pod_is_reported_when_the_shards_are_fine() -> None:
    verifier = pod("verifier-x", waiting="CrashLoopBackOff")
    observed = jobstate.job_state(job(active=2), [pod("gen-0")], support_pods=[verifier])
    assert observed.reason == "CrashLoopBackOff"
    assert observed.message.startswith("CrashLoopBackOff on verifier-x")


def test_a_job_over_its_failure_policy_fails_with_the_generators_reason() -> None:
    failed = job([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}])
    reason = (
        "240 of 400 rollouts failed (60%; failurePolicy.maxFailedFraction is 0.1): malformed x240"
    )
    pods = [exited("gen-a0", 0, ""), exited("gen-a1", ExitCode.TOO_MANY_FAILURES, reason)]
    observed = jobstate.job_state(failed, pods)
    assert (observed.phase, observed.reason) == (Phase.FAILED, c.REASON_TOO_MANY_FAILURES)
    assert observed.message == reason

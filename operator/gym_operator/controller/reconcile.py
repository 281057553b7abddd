"""The steps both kinds' reconciles share: own and create children, conclude with one status.

A reconcile reads the world through `Runtime.kube`, acts on the children, and returns an
`Outcome`: the status merge patch (empty when nothing changed), the Events to post and the
annotations to set. The kopf handlers only apply it; nothing here imports kopf.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiException

from gym_operator import metrics
from gym_operator.api import Phase, SpecError, parse_resource
from gym_operator.api.common import ResourceStatus
from gym_operator.controller import constants as c
from gym_operator.controller import status as st
from gym_operator.controller.conditions import Aspect, Observed
from gym_operator.controller.runtime import Runtime

Body = Mapping[str, Any]


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the resource."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class Outcome:
    """What one reconcile decided: the status patch, Events, annotations; applied by kopf."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)
    refusal: str | None = None
    """Set when the spec is invalid: why (the handler stops retrying)."""


class Forbidden(Exception):
    """The operator may not create a child (its RBAC lacks the verb); the message says which."""


def parse(body: Body, spec: Mapping[str, Any] | None = None) -> Any:
    """The resource as its model: with `spec`, else the spec it runs with (`effective_spec`)."""
    meta = body.get("metadata") or {}
    doc = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": meta.get("labels"),
        },
        "spec": dict(spec) if spec is not None else effective_spec(body),
    }
    return parse_resource(doc, f"{body.get('kind')} {meta.get('namespace')}/{meta.get('name')}")


def applied_spec(body: Body) -> dict[str, Any] | None:
    """The spec the children were built from (the applied-spec annotation), if recorded."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(c.ANNOTATION_APPLIED_SPEC)
    return json.loads(text) if text else None


def effective_spec(body: Body) -> dict[str, Any]:
    """The applied spec with the current values of the fields that may change while running
    (suspend, TTL): a refused change is not applied. The current spec before the first apply."""
    current = dict(body.get("spec") or {})
    applied = applied_spec(body)
    if applied is None:
        return current
    spec = {k: v for k, v in applied.items() if k not in c.MUTABLE_SPEC_FIELDS}
    spec.update({k: v for k, v in current.items() if k in c.MUTABLE_SPEC_FIELDS})
    return spec


def refused_fields(body: Body) -> list[str]:
    """Spec fields changed since the children were built that may not change."""
    applied = applied_spec(body)
    if applied is None:
        return []
    return st.refused_changes(applied, dict(body.get("spec") or {}))


def record_applied_spec(body: Body, outcome: Outcome) -> None:
    """Remember the spec the children are built from (once)."""
    if applied_spec(body) is None:
        spec = json.dumps(dict(body.get("spec") or {}), sort_keys=True, separators=(",", ":"))
        outcome.annotations[c.ANNOTATION_APPLIED_SPEC] = spec


def owned(manifest: dict[str, Any], owner: Body) -> dict[str, Any]:
    """The child with the owner as its controller (so it goes with it), in the owner's
    namespace, carrying the owner's labels where it has none of its own."""
    meta = manifest.setdefault("metadata", {})
    owner_meta = owner.get("metadata") or {}
    reference = {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": owner_meta.get("name"),
        "uid": owner_meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }
    references = meta.setdefault("ownerReferences", [])
    if all(ref.get("uid") != reference["uid"] for ref in references):
        references.append(reference)
    meta.setdefault("namespace", owner_meta.get("namespace"))
    meta["labels"] = {**(owner_meta.get("labels") or {}), **(meta.get("labels") or {})}
    return manifest


def create_children(rt: Runtime, owner: Body, manifests: Iterable[dict[str, Any]]) -> int:
    """Create each child unless it exists; how many were created. Forbidden when the operator
    may not create one."""
    created = 0
    for manifest in manifests:
        try:
            made = rt.kube.create_if_absent(owned(manifest, owner))
        except ApiException as exc:
            if exc.status != 403:
                raise
            raise Forbidden(
                f"the operator may not create {manifest['kind']}: {exc.reason}"
            ) from None
        if made:
            created += 1
            metrics.OPERATOR_CHILDREN_CREATED.labels(child=manifest["kind"]).inc()
    return created


Follow = Callable[[Runtime, Body, Any, Outcome], Outcome]
"""A kind's pass over its running resource: (runtime, body, parsed resource, outcome so far)."""


def pass_over(rt: Runtime, model: type[ResourceStatus], body: Body, follow: Follow) -> Outcome:
    """One pass over an admitted resource: nothing before its first phase (the handlers set it)
    or for a spec that never ran (admission said why it is invalid); a finished one is deleted
    once its TTL is due; otherwise `follow`, and a missing permission is kept as its reason."""
    phase = (body.get("status") or {}).get("phase")
    if not phase:
        return Outcome()
    try:
        resource = parse(body)
    except SpecError:
        return Outcome()
    if Phase(phase).is_terminal():
        rt.record_phase(str(body.get("kind")), str(body["metadata"]["uid"]), phase)
        return expire_if_due(rt, body, resource.spec.ttl_seconds_after_finished)
    outcome = Outcome()
    try:
        return follow(rt, body, resource, outcome)
    except Forbidden as error:
        return conclude(rt, model, body, forbidden(body, error), outcome=outcome)


def forbidden(body: Body, error: Forbidden) -> Observed:
    """The resource stays where it is, with the missing permission as its reason."""
    phase = (body.get("status") or {}).get("phase") or Phase.PENDING
    return Observed(Phase(phase), c.REASON_FORBIDDEN, str(error))


def conclude(
    rt: Runtime,
    model: type[ResourceStatus],
    body: Body,
    observed: Observed,
    extra: Mapping[str, Any] | None = None,
    aspects: Iterable[Aspect] = (),
    outcome: Outcome | None = None,
) -> Outcome:
    """The status write (only what changed) and the Events of a phase move or a new problem."""
    outcome = outcome or Outcome()
    current = dict(body.get("status") or {})
    meta = body.get("metadata") or {}
    desired = st.desired_status(
        model, current, observed, meta.get("generation"), st.now_iso(), extra, aspects
    )
    outcome.status = st.status_patch(current, desired)
    old_phase = current.get("phase")
    problem = observed.reason in c.POD_PROBLEM_REASONS or observed.reason == c.REASON_FORBIDDEN
    if observed.phase != old_phase:
        text = f"{old_phase or 'New'} -> {observed.phase.value}: {observed.message}"
        warning = observed.phase == Phase.FAILED or problem
        outcome.events.append(Event(observed.reason, text, warning=warning))
        if observed.phase.is_terminal():
            record_duration(str(body.get("kind")), observed.phase, desired)
    elif problem and observed.message != current.get("message"):
        outcome.events.append(Event(observed.reason, observed.message, warning=True))
    rt.record_phase(str(body.get("kind")), str(meta.get("uid")), observed.phase.value)
    return outcome


def record_duration(kind: str, phase: Phase, status: ResourceStatus) -> None:
    """The job-duration histogram, on a finish."""
    start, end = st.parse_time(status.start_time), st.parse_time(status.completion_time)
    if start and end:
        metrics.OPERATOR_JOB_DURATION.labels(kind=kind, phase=phase.value).observe(
            (end - start).total_seconds()
        )


def spec_refusal_events(body: Body, refused: list[str]) -> list[Event]:
    """A Warning when the set of refused spec fields changed (not on every tick)."""
    if not refused:
        return []
    message = f"cannot change {', '.join(refused)} while running; the change is not applied"
    conditions = (body.get("status") or {}).get("conditions") or []
    shown = next((x for x in conditions if x.get("type") == c.CONDITION_SPEC_ACCEPTED), None)
    if (
        shown is not None
        and shown.get("status") == "False"
        and all(path in str(shown.get("message")) for path in refused)
    ):
        return []
    return [Event(c.REASON_SPEC_CHANGE_REFUSED, message, warning=True)]


def expire_if_due(rt: Runtime, body: Body, ttl: int | None) -> Outcome:
    """Delete a finished resource once its ttlSecondsAfterFinished has passed."""
    status = body.get("status") or {}
    now = datetime.datetime.now(tz=datetime.UTC)
    if not st.ttl_expired(status, ttl, now):
        return Outcome()
    meta = body["metadata"]
    rt.kube.delete(str(body["kind"]), meta["namespace"], meta["name"])
    return Outcome(events=[Event(c.REASON_EXPIRED, f"deleting after ttl {ttl}s")])


def was_invalid(body: Body) -> bool:
    """Failed only because of its spec: a corrected spec starts the resource afresh."""
    status = body.get("status") or {}
    return status.get("phase") == Phase.FAILED and status.get("reason") == c.REASON_INVALID_SPEC


def admit(
    rt: Runtime,
    model: type[ResourceStatus],
    body: Body,
    first: Callable[[Any], Mapping[str, Any]] | None = None,
) -> Outcome:
    """What a create/resume/update handler writes: nothing for a resource under way (its
    reconcile owns it); else Failed naming every bad field, or a first Pending (also after a
    corrected invalid spec) with the `first` status fields of the parsed resource."""
    status = body.get("status") or {}
    if status.get("phase") and not was_invalid(body):
        return Outcome()
    try:
        resource = parse(body, body.get("spec") or {})
    except SpecError as error:
        message = "invalid spec: " + "; ".join(error.problems)
        observed = Observed(Phase.FAILED, c.REASON_INVALID_SPEC, message)
        outcome = conclude(rt, model, body, observed)
        if not outcome.events:  # still Failed, but a new bad spec: say so
            outcome.events.append(Event(c.REASON_INVALID_SPEC, message, warning=True))
        outcome.refusal = message
        return outcome
    observed = Observed(Phase.PENDING, c.REASON_ACCEPTED, "spec accepted; creating the children")
    fresh = {"startTime": None, "completionTime": None, **(first(resource) if first else {})}
    return conclude(rt, model, body, observed, fresh)

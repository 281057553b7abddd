"""The status as api/'s model: phase, times, conditions, and a merge patch only on change.

Pure functions over plain dicts (the API bodies) and the api status models; no kopf, no client.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from gym_operator.api import Phase
from gym_operator.api.common import ResourceStatus
from gym_operator.controller import constants as c
from gym_operator.controller.conditions import Aspect, Observed, apply_all, phase_aspects

StatusModel = TypeVar("StatusModel", bound=ResourceStatus)


def now_iso(now: datetime.datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with second precision, as Kubernetes writes them."""
    moment = now or datetime.datetime.now(tz=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    """Parse an RFC 3339 timestamp (None stays None)."""
    if not value:
        return None
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def wire_keys(model: type[ResourceStatus]) -> frozenset[str]:
    """The camelCase status keys a status model owns (others, e.g. a newer field, are left)."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def desired_status(
    model: type[StatusModel],
    current: Mapping[str, Any],
    observed: Observed,
    generation: int | None,
    now: str,
    extra: Mapping[str, Any] | None = None,
    aspects: Iterable[Aspect] = (),
) -> StatusModel:
    """The whole status as `model`: the current one with the observed phase, reason and message,
    the generation, start/completion times, the five aspect conditions (+ `aspects`, e.g.
    SpecAccepted or ServerReady) and the `extra` fields (None removes one)."""
    owned = {key: value for key, value in current.items() if key in wire_keys(model)}
    conditions = apply_all(
        current.get("conditions") or [],
        [*phase_aspects(observed), *aspects],
        generation,
        now,
    )
    fields: dict[str, Any] = {
        **owned,
        "phase": observed.phase.value,
        "reason": observed.reason,
        "message": observed.message,
        "observedGeneration": generation,
        "conditions": conditions,
    }
    if observed.phase in (Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED):
        fields["startTime"] = fields.get("startTime") or now
    if observed.phase.is_terminal():
        fields["completionTime"] = fields.get("completionTime") or now
    fields.update(extra or {})
    return model.model_validate({k: v for k, v in fields.items() if v is not None})


def status_patch(current: Mapping[str, Any], desired: ResourceStatus) -> dict[str, Any]:
    """The merge patch turning `current` into `desired`; empty when equal. Top-level keys the
    model does not own are left as they are."""
    wire = desired.wire()
    patch = merge_patch({k: v for k, v in current.items() if k in wire}, wire)
    for key in wire_keys(type(desired)):
        if key in current and key not in wire:
            patch[key] = None
    return patch


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) from `old` to `new`: a server merges nested objects key by
    key, so a key gone from a nested object (e.g. progress.etaSeconds) must be sent as null."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        nested = isinstance(before, Mapping) and isinstance(value, Mapping)
        patch[key] = merge_patch(before, value) if nested else value
    return patch


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
    if ttl_seconds is None or status.get("phase") not in (Phase.SUCCEEDED, Phase.FAILED):
        return False
    finished = parse_time(status.get("completionTime"))
    if finished is None:
        return False
    return (now - finished).total_seconds() >= ttl_seconds

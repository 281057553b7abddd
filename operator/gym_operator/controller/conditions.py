"""Status conditions: one aspect each (Ready, Progressing, Complete, Failed, Suspended, ...).

Pure functions over the metav1.Condition dicts of a status; no kopf, no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gym_operator.api import Phase
from gym_operator.controller import constants as c

Conditions = list[dict[str, Any]]


@dataclass(frozen=True)
class Observed:
    """Where a resource is (its phase), and why."""

    phase: Phase
    reason: str
    message: str


@dataclass(frozen=True)
class Aspect:
    """One condition as it should be. `quiet`: absent until it is first False. `keep_why`: while
    it stays False it keeps the reason and message it turned False with."""

    type: str
    true: bool
    reason: str
    message: str
    quiet: bool = False
    keep_why: bool = False


TRUE_IN: dict[str, frozenset[Phase]] = {
    c.CONDITION_READY: frozenset({Phase.RUNNING}),
    c.CONDITION_PROGRESSING: frozenset({Phase.PENDING, Phase.RUNNING}),
    c.CONDITION_COMPLETE: frozenset({Phase.SUCCEEDED}),
    c.CONDITION_FAILED: frozenset({Phase.FAILED}),
    c.CONDITION_SUSPENDED: frozenset({Phase.SUSPENDED}),
}
"""In which phases each aspect condition is True."""


def phase_aspects(observed: Observed) -> list[Aspect]:
    """The five aspect conditions the phase implies, with the observed reason and message."""
    return [
        Aspect(
            type_,
            observed.phase in TRUE_IN[type_],
            observed.reason,
            observed.message,
            keep_why=True,
        )
        for type_ in c.ASPECT_CONDITIONS
    ]


def set_condition(
    conditions: Iterable[Mapping[str, Any]], aspect: Aspect, generation: int | None, now: str
) -> Conditions:
    """Conditions with `aspect` applied; lastTransitionTime moves only when the status flips."""
    status = "True" if aspect.true else "False"
    out: Conditions = []
    found = False
    for cond in conditions:
        if cond.get("type") != aspect.type:
            out.append(dict(cond))
            continue
        found = True
        out.append(_updated(dict(cond), aspect, status, generation, now))
    if not found and not (aspect.quiet and aspect.true):
        out.append(_updated({}, aspect, status, generation, now))
    return out


def _updated(
    cond: dict[str, Any], aspect: Aspect, status: str, generation: int | None, now: str
) -> dict[str, Any]:
    flipped = cond.get("status") != status
    if not flipped and not aspect.true and aspect.keep_why:
        return cond
    new: dict[str, Any] = {
        "type": aspect.type,
        "status": status,
        "reason": aspect.reason,
        "message": aspect.message,
        "lastTransitionTime": now if flipped else cond.get("lastTransitionTime", now),
    }
    if generation is not None:
        new["observedGeneration"] = generation
    return new


def apply_all(
    conditions: Iterable[Mapping[str, Any]],
    aspects: Iterable[Aspect],
    generation: int | None,
    now: str,
) -> Conditions:
    """Every aspect applied in turn."""
    out = [dict(cond) for cond in conditions]
    for aspect in aspects:
        out = set_condition(out, aspect, generation, now)
    return out


def find(conditions: Iterable[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of a type, or None."""
    return next((cond for cond in conditions if cond.get("type") == type_), None)


def spec_aspect(refused: list[str]) -> Aspect:
    """SpecAccepted: False naming the fields while a running resource's spec change is refused."""
    if refused:
        message = (
            f"cannot change {', '.join(refused)} while running; "
            "revert the change, or delete and re-create the resource"
        )
        return Aspect(
            c.CONDITION_SPEC_ACCEPTED, False, c.REASON_SPEC_CHANGE_REFUSED, message, quiet=True
        )
    return Aspect(
        c.CONDITION_SPEC_ACCEPTED, True, c.REASON_SPEC_CHANGE_APPLIED, "spec accepted", quiet=True
    )


def progress_aspect(problem: str | None) -> Aspect:
    """ProgressReadable: False with the problem while the shard manifests cannot be read."""
    if problem is None:
        return Aspect(
            c.CONDITION_PROGRESS_READABLE,
            True,
            c.REASON_PROGRESS_READ,
            "the shard manifests are readable",
            quiet=True,
        )
    return Aspect(
        c.CONDITION_PROGRESS_READABLE, False, c.REASON_PROGRESS_UNREADABLE, problem, quiet=True
    )


def server_aspect(ready: bool, reason: str, message: str) -> Aspect:
    """ServerReady: the managed model server's state."""
    return Aspect(c.CONDITION_SERVER_READY, ready, reason, message)

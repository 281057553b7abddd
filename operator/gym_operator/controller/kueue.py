"""Kueue's conventions for the Jobs the operator makes: pure decisions, no I/O.

A resource labelled `kueue.x-k8s.io/queue-name` passes its Kueue labels to its Jobs and creates
them suspended; Kueue un-suspends a Job when it admits it. The operator may suspend a Job (the
user's spec.suspend) but never un-suspends a queued one, so it never races Kueue's admission.
"""

from __future__ import annotations

from collections.abc import Mapping

from gym_operator.controller import constants as c


def labels(resource_labels: Mapping[str, str] | None) -> dict[str, str]:
    """The resource's Kueue labels (queue-name, priority-class), to copy onto its Jobs."""
    return {k: v for k, v in (resource_labels or {}).items() if k.startswith(c.KUEUE_PREFIX)}


def queued(resource_labels: Mapping[str, str] | None) -> bool:
    """Whether Kueue admits the resource's Jobs (it names a queue)."""
    return bool((resource_labels or {}).get(c.KUEUE_QUEUE_LABEL))


def suspend_patch(
    job_suspended: bool | None, spec_suspend: bool, queued: bool, server_ready: bool
) -> bool | None:
    """The value to write to the generator Job's spec.suspend, or None to leave it alone.

    `job_suspended` is the Job's current value (None: not read). spec.suspend is applied at
    once; a resume un-suspends only a Job Kueue does not admit, and only once the model server
    (if any) is ready.
    """
    if spec_suspend:
        return None if job_suspended is True else True
    if queued or not server_ready or job_suspended is False:
        return None
    return False

"""The Dataset reconcile: the one place that creates its builder Job and sets its status.

Each run waits for the referenced RolloutJobs to succeed, then creates the spec ConfigMap and the
builder Job, follows the Job, and on success copies the builder's result file into status.
No kopf here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gym_operator.api import Dataset, DatasetStatus, Phase
from gym_operator.controller import builders
from gym_operator.controller import constants as c
from gym_operator.controller.conditions import Observed, spec_aspect
from gym_operator.controller.jobstate import admission_state, job_state
from gym_operator.controller.reconcile import (
    Event,
    Outcome,
    conclude,
    create_children,
    pass_over,
    record_applied_spec,
    refused_fields,
    spec_refusal_events,
)
from gym_operator.controller.runtime import Runtime

log = logging.getLogger(__name__)
Body = Mapping[str, Any]
DATASET_RESULT_FILE = "_DATASET.json"
"""Written last by the dataset builder under the output prefix (data.builder.RESULT_FILE):
counts, splits, files, card. Not imported: the builder's dependencies stay out of the operator."""


def reconcile(rt: Runtime, body: Body) -> Outcome:
    """One pass over an admitted Dataset (the handlers set its first phase)."""
    return pass_over(rt, DatasetStatus, body, follow)


def follow(rt: Runtime, body: Body, dataset: Dataset, outcome: Outcome) -> Outcome:
    """Wait for the sources, start the builder, follow it."""
    namespace, name = str(dataset.metadata.namespace), dataset.metadata.name
    builder = rt.kube.get("Job", namespace, c.builder_job_name(name))
    if builder is None:
        blocked, uris = resolve_sources(rt, dataset)
        if blocked is not None:
            return conclude(rt, DatasetStatus, body, blocked, outcome=outcome)
        made = [
            builders.build_spec_configmap(dataset),
            builders.build_dataset_job(dataset, uris, rt.cfg),
        ]
        created = create_children(rt, body, made)
        record_applied_spec(body, outcome)  # from here on, the spec the builder runs is fixed
        if created:
            outcome.events.append(Event(c.REASON_CREATED, f"created {created} child objects"))
        builder = rt.kube.get("Job", namespace, c.builder_job_name(name))
    labels = {c.LABEL_DATASET: name, c.LABEL_COMPONENT: c.COMPONENT_BUILDER}
    observed = job_state(builder, rt.kube.list("Pod", namespace, labels), "builder pods")
    queue = (dataset.metadata.labels or {}).get(c.KUEUE_QUEUE_LABEL)
    observed = admission_state(observed, False, queue)
    extra = read_result(rt, dataset) if observed.phase == Phase.SUCCEEDED else {}
    aspects = []
    if not observed.phase.is_terminal():
        refused = refused_fields(body)
        aspects.append(spec_aspect(refused))
        outcome.events += spec_refusal_events(body, refused)
    return conclude(rt, DatasetStatus, body, observed, extra, aspects, outcome)


def resolve_sources(rt: Runtime, dataset: Dataset) -> tuple[Observed | None, list[str]]:
    """Output prefixes of the referenced RolloutJobs, or why the build cannot start yet."""
    namespace = str(dataset.metadata.namespace)
    uris: list[str] = []
    waiting: list[str] = []
    for source in dataset.spec.sources:
        ref = source.rollout_job_ref
        if ref is None:
            continue
        found = rt.kube.get("RolloutJob", namespace, ref)
        if found is None:
            message = f"RolloutJob {ref} not found"
            return Observed(Phase.PENDING, c.REASON_SOURCE_MISSING, message), []
        status = found.get("status") or {}
        phase = status.get("phase") or Phase.PENDING
        if phase == Phase.FAILED:
            message = f"source RolloutJob {ref} failed: {status.get('message', '')}".rstrip(": ")
            return Observed(Phase.FAILED, c.REASON_SOURCE_FAILED, message), []
        if phase != Phase.SUCCEEDED:
            summary = (status.get("progress") or {}).get("summary", "")
            waiting.append(f"{ref} ({phase}{', ' + summary if summary else ''})")
            continue
        uris.append((status.get("output") or {}).get("uri") or found["spec"]["output"]["uri"])
    if waiting:
        message = "waiting for RolloutJob " + ", ".join(waiting)
        return Observed(Phase.PENDING, c.REASON_WAITING, message), []
    return None, uris


def read_result(rt: Runtime, dataset: Dataset) -> dict[str, Any]:
    """status.counts/splits/files/card from the builder's result file, when it wrote one."""
    uri = dataset.spec.output.uri.rstrip("/") + "/" + DATASET_RESULT_FILE
    try:
        settings = rt.s3_settings(dataset.spec.s3, str(dataset.metadata.namespace))
        result = json.loads(rt.stores.get(settings).read_bytes(uri))
    except Exception as exc:  # the file is optional; status just lacks the counts
        log.info("no dataset result at %s: %s", uri, exc)
        return {}
    picked = {key: result.get(key) for key in ("counts", "splits", "files", "card")}
    try:
        return DatasetStatus.model_validate(picked).wire()
    except ValidationError as exc:
        log.warning("unexpected dataset result at %s: %s", uri, exc)
        return {}

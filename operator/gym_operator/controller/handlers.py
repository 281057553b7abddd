"""Thin kopf handlers: parse the resource, build children, adopt, create if absent, patch status.

RolloutJob: a spec ConfigMap, a verifier Deployment + Service (built-in or image verifier) and
one Indexed generator Job. Dataset: a spec ConfigMap and a builder Job once every referenced
RolloutJob succeeded. A timer per resource turns child state and shard manifests into status.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import kopf
from kubernetes.client import ApiException

from gym_operator import metrics
from gym_operator.api import API_GROUP, API_VERSION, Dataset, RolloutJob, SpecError, parse_resource
from gym_operator.api.common import S3Spec
from gym_operator.controller import builders, kube, kueue, progress, serving
from gym_operator.controller import constants as c
from gym_operator.controller import status as st
from gym_operator.controller.config import OperatorConfig
from gym_operator.controller.viewerlink import path_for as viewer_path_for
from gym_operator.storage.store import S3Settings

TIMERS = OperatorConfig.from_env().timers
"""Timer intervals are fixed when handlers are registered (import time), so read them here."""
TERMINAL = (c.SUCCEEDED, c.FAILED)
TIMER_EXIT_WAIT_SECONDS = 1.0
TIMER_EXIT_POLL_SECONDS = 5.0
FORBIDDEN_RETRY_SECONDS = 30.0
"""How soon a child the operator was not allowed to create is tried again (RBAC fixed)."""
DATASET_RESULT_FILE = "_DATASET.json"
"""Written last by the dataset builder under the output prefix (data.builder.RESULT_FILE):
counts, splits, files, card. Not imported: the builder's dependencies stay out of the operator."""


@dataclass
class Runtime:
    """Clients and state made once per operator process (kept in kopf's memo)."""

    cfg: OperatorConfig
    kube: kube.KubeClient
    stores: progress.StorageCache = field(default_factory=progress.StorageCache)
    samples: dict[str, progress.Sample] = field(default_factory=dict)
    last_read: dict[str, float] = field(default_factory=dict)
    read_errors: dict[str, str] = field(default_factory=dict)
    phases: dict[tuple[str, str], str] = field(default_factory=dict)
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, uid: str) -> threading.Lock:
        """The resource's lock: its create/resume handlers and its timer never interleave (kopf
        runs them in threads side by side), so a stale handler cannot undo what a timer did."""
        with self.locks_guard:
            return self.locks.setdefault(uid, threading.Lock())

    def record_phase(self, kind: str, uid: str, phase: str | None) -> None:
        """Track the phase of a resource for the resources-by-phase gauge."""
        if phase is None:
            self.phases.pop((kind, uid), None)
        else:
            self.phases[(kind, uid)] = phase
        for phase_name in c.CONDITION_BY_PHASE:
            count = sum(1 for (k, _), p in self.phases.items() if k == kind and p == phase_name)
            metrics.OPERATOR_RESOURCES.labels(kind=kind, phase=phase_name).set(count)


def runtime(memo: Any) -> Runtime:
    """The Runtime stored in kopf's memo at startup."""
    rt: Runtime = memo.runtime
    return rt


@contextlib.contextmanager
def timed(kind: str, handler: str) -> Iterator[None]:
    """Reconcile latency and error metrics around one handler run."""
    started = time.monotonic()
    try:
        yield
    except kopf.PermanentError:
        metrics.OPERATOR_RECONCILE_ERRORS.labels(kind=kind, handler=handler).inc()
        raise
    except ApiException as exc:
        metrics.OPERATOR_RECONCILE_ERRORS.labels(kind=kind, handler=handler).inc()
        raise kopf.TemporaryError(
            f"Kubernetes API error {exc.status}: {exc.reason}", delay=5
        ) from exc
    except Exception:
        metrics.OPERATOR_RECONCILE_ERRORS.labels(kind=kind, handler=handler).inc()
        raise
    finally:
        metrics.OPERATOR_RECONCILE_LATENCY.labels(kind=kind, handler=handler).observe(
            time.monotonic() - started
        )


@kopf.on.startup()
def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep kopf's state in gymops.dev annotations, run standalone, make the clients once."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.peering.standalone = True
    settings.posting.level = logging.INFO
    settings.posting.loggers = False  # Events only from our explicit kopf.info/warn, not per log
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    # A timer that has just deleted its own resource (TTL) is still finishing when the deletion
    # event arrives; wait for it briefly, and re-check a slow one every few seconds, not kopf's
    # default minute, so the finalizer is released promptly.
    settings.background.instant_exit_timeout = TIMER_EXIT_WAIT_SECONDS
    settings.background.cancellation_polling = TIMER_EXIT_POLL_SECONDS
    cfg = getattr(memo, "cfg", None) or OperatorConfig.from_env()
    memo.runtime = Runtime(cfg=cfg, kube=kube.KubeClient.from_environment())


@kopf.on.cleanup()
def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close the clients."""
    rt: Runtime | None = getattr(memo, "runtime", None)
    if rt is not None:
        rt.stores.close()
        rt.kube.close()


# ----------------------------------------------------------------------------- shared steps


def parse(body: Mapping[str, Any]) -> RolloutJob | Dataset:
    """The resource as its model (identity and spec only; status is ours)."""
    meta = body.get("metadata") or {}
    doc = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": meta.get("labels"),
        },
        "spec": dict(body.get("spec") or {}),
    }
    return parse_resource(doc, f"{body.get('kind')} {meta.get('namespace')}/{meta.get('name')}")


def fail_invalid(body: kopf.Body, patch: kopf.Patch, error: SpecError) -> None:
    """Phase Failed naming every bad field, a Warning event, and no retries."""
    message = "invalid spec: " + "; ".join(error.problems)
    observed = st.Observed(c.FAILED, c.REASON_INVALID_SPEC, message)
    if (body.get("status") or {}).get("phase") == c.FAILED:
        kopf.warn(body, reason=c.REASON_INVALID_SPEC, message=message)  # no phase move to report
    write_status(body, patch, observed)
    raise kopf.PermanentError(message)


def write_status(
    body: kopf.Body,
    patch: kopf.Patch,
    observed: st.Observed,
    extra: Mapping[str, Any] | None = None,
    server: st.ServerState | None = None,
    progress_problem: str | None = None,
) -> dict[str, Any]:
    """Patch only the status fields that change; post an Event when the phase moves.

    `progress_problem` sets ProgressReadable False with it as the message (None: True again,
    once the condition exists)."""
    current = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    refused = refused_fields(body) if observed.phase not in TERMINAL else None
    desired = st.desired_status(current, observed, generation, st.now_iso(), extra, refused, server)
    desired["conditions"] = progress_condition(desired["conditions"], progress_problem, generation)
    changes = st.status_patch(current, desired)
    if changes:
        patch.status.update(changes)
    old_phase = current.get("phase")
    if observed.phase != old_phase:
        log_phase_change(body, old_phase, observed, desired)
    elif observed.reason in c.POD_PROBLEM_REASONS and observed.message != current.get("message"):
        kopf.warn(body, reason=observed.reason, message=observed.message)
    return desired


def progress_condition(
    conditions: list[dict[str, Any]], problem: str | None, generation: int | None
) -> list[dict[str, Any]]:
    """ProgressReadable: False with the problem; True once readable again (only when it was
    ever False, so a healthy resource carries no extra condition)."""
    known = any(cond.get("type") == c.CONDITION_PROGRESS_READABLE for cond in conditions)
    if problem is None and not known:
        return conditions
    if problem is None:
        return st.set_condition(
            conditions, c.CONDITION_PROGRESS_READABLE, "True", c.REASON_PROGRESS_READ,
            "the shard manifests are readable", generation, st.now_iso(),
        )  # fmt: skip
    return st.set_condition(
        conditions, c.CONDITION_PROGRESS_READABLE, "False", c.REASON_PROGRESS_UNREADABLE,
        problem, generation, st.now_iso(),
    )  # fmt: skip


def log_phase_change(
    body: kopf.Body, old_phase: str | None, observed: st.Observed, desired: Mapping[str, Any]
) -> None:
    """An Event for the move, and the duration histogram on a finish."""
    kind = str(body.get("kind"))
    text = f"{old_phase or 'New'} -> {observed.phase}: {observed.message}"
    if observed.phase == c.FAILED or observed.reason in c.POD_PROBLEM_REASONS:
        kopf.warn(body, reason=observed.reason, message=text)
    else:
        kopf.info(body, reason=observed.reason, message=text)
    if observed.phase in TERMINAL:
        start = st.parse_time(desired.get("startTime"))
        end = st.parse_time(desired.get("completionTime"))
        if start and end:
            metrics.OPERATOR_JOB_DURATION.labels(kind=kind, phase=observed.phase).observe(
                (end - start).total_seconds()
            )


def create_children(
    rt: Runtime, body: kopf.Body, patch: kopf.Patch, manifests: list[dict[str, Any]]
) -> int:
    """Adopt and create each child unless it exists; the number actually created. A child the
    operator may not create (RBAC) is named in status.message and a Warning event, then retried."""
    created = 0
    for manifest in manifests:
        kopf.adopt(manifest, owner=body)
        try:
            made = rt.kube.create_if_absent(manifest)
        except ApiException as exc:
            if exc.status != 403:
                raise
            message = f"the operator may not create {manifest['kind']}: {exc.reason}"
            kopf.warn(body, reason=c.REASON_FORBIDDEN, message=message)
            patch.status.update({"reason": c.REASON_FORBIDDEN, "message": message})
            raise kopf.TemporaryError(message, delay=FORBIDDEN_RETRY_SECONDS) from None
        if made:
            created += 1
            metrics.OPERATOR_CHILDREN_CREATED.labels(child=manifest["kind"]).inc()
    return created


def record_applied_spec(body: kopf.Body, patch: kopf.Patch) -> None:
    """Remember the spec the children were built from (once)."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    if c.ANNOTATION_APPLIED_SPEC not in annotations:
        spec = json.dumps(dict(body.get("spec") or {}), sort_keys=True, separators=(",", ":"))
        patch.metadata.setdefault("annotations", {})[c.ANNOTATION_APPLIED_SPEC] = spec


def refused_fields(body: kopf.Body) -> list[str]:
    """Spec fields changed since the children were built that may not change."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    applied = annotations.get(c.ANNOTATION_APPLIED_SPEC)
    if not applied:
        return []
    return st.refused_changes(json.loads(applied), dict(body.get("spec") or {}))


def expire_if_due(rt: Runtime, body: kopf.Body, ttl: int | None) -> None:
    """Delete a finished resource once its ttlSecondsAfterFinished has passed."""
    status = body.get("status") or {}
    now = datetime.datetime.now(tz=datetime.UTC)
    if st.ttl_expired(status, ttl, now):
        meta = body["metadata"]
        kopf.info(body, reason=c.REASON_EXPIRED, message=f"deleting after ttl {ttl}s")
        rt.kube.delete(str(body["kind"]), meta["namespace"], meta["name"])


def on_spec_update(rt: Runtime, body: kopf.Body, patch: kopf.Patch) -> None:
    """Refuse changes to a running resource's spec except suspend and the TTL (an Event and
    the SpecAccepted condition say which fields)."""
    if (body.get("status") or {}).get("phase") in TERMINAL:
        return
    refused = refused_fields(body)
    if refused:
        message = f"cannot change {', '.join(refused)} while running; the change is not applied"
        kopf.warn(body, reason=c.REASON_SPEC_CHANGE_REFUSED, message=message)
    current = body.get("status") or {}
    conditions = st.spec_condition(
        current.get("conditions") or [],
        refused,
        body.get("metadata", {}).get("generation"),
        st.now_iso(),
    )
    if conditions != (current.get("conditions") or []):
        patch.status["conditions"] = conditions


# ----------------------------------------------------------------------------- RolloutJob


def rolloutjob_children(
    job: RolloutJob, cfg: OperatorConfig, base_url: str | None = None, ready: bool = True
) -> list[dict[str, Any]]:
    """Every child of a RolloutJob, in creation order (the spec first, the generators last);
    the generators only once the endpoint's URL is known and it is `ready`; the model server
    unless the job is suspended."""
    base_url = base_url or serving.static_base_url(job)
    children = [builders.build_spec_configmap(job, base_url)]
    if builders.needs_verifier_server(job):
        children += [
            builders.build_verifier_deployment(job, cfg),
            builders.build_verifier_service(job, cfg),
        ]
    if serving.manages_server(job) and not job.spec.suspend:
        children += [builders.build_server_deployment(job), builders.build_server_service(job)]
    if base_url and ready:
        children.append(builders.build_generator_job(job, cfg))
    return children


def rolloutjob_total_hint(job: RolloutJob) -> int | None:
    """Rollouts expected before the shards know: limit x repeats, when a limit is set."""
    if job.spec.input.limit is None:
        return None
    return job.spec.input.limit * job.spec.sampling.num_repeats


def was_invalid(body: kopf.Body) -> bool:
    """Failed only because of its spec: a corrected spec starts the resource afresh."""
    status = body.get("status") or {}
    return status.get("phase") == c.FAILED and status.get("reason") == c.REASON_INVALID_SPEC


FRESH_START: dict[str, Any] = {"startTime": None, "completionTime": None}
"""Status fields cleared when a resource that had an invalid spec starts afresh."""


def finished_meanwhile(rt: Runtime, body: kopf.Body) -> bool:
    """Whether the job has finished although kopf's body does not say so: a handler retry can
    run on a body older than the timer's last status write (e.g. after a cut watch), and must
    not re-create the verifier the timer deleted when the job finished. The generator Job
    tells first (the timer's status patch is written after it deleted the verifier)."""
    meta = body.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    live = rt.kube.get("RolloutJob", namespace, name)
    if not live:
        return False
    if was_invalid(live):
        return False
    phase = (live.get("status") or {}).get("phase")
    if phase in TERMINAL:
        return True
    if not phase:  # the Job finished before a first status was written: write it now, so the
        return False  # timer takes over (no timer ran, so it deleted no verifier)
    gen = rt.kube.get("Job", namespace, c.generator_job_name(str(name)))
    return gen is not None and st.job_state(gen, []).phase in TERMINAL


def ensure_rolloutjob(body: kopf.Body, patch: kopf.Patch, memo: Any) -> None:
    """Validate; create the children that are missing; set the first status."""
    rt = runtime(memo)
    status = body.get("status") or {}
    if status.get("phase") in TERMINAL and not was_invalid(body):
        return
    try:
        job = parse(body)
    except SpecError as error:
        rt.record_phase("RolloutJob", body["metadata"]["uid"], c.FAILED)
        fail_invalid(body, patch, error)
        return
    assert isinstance(job, RolloutJob)
    with rt.lock(body["metadata"]["uid"]):
        if finished_meanwhile(rt, body):
            return
        ready = not serving.generators_wait(job)
        children = rolloutjob_children(job, rt.cfg, ready=ready)
        created = create_children(rt, body, patch, children)
    record_applied_spec(body, patch)
    if not status.get("phase") or was_invalid(body):
        observed = st.Observed(c.PENDING, c.REASON_CREATED, f"created {created} child objects")
        total = rolloutjob_total_hint(job)
        extra = {
            **FRESH_START,
            "output": {"uri": job.spec.output.uri},
            "progress": {"completed": 0, "failed": 0, "summary": f"0/{total or '?'}"},
        }
        write_status(body, patch, observed, extra)
        rt.record_phase("RolloutJob", body["metadata"]["uid"], c.PENDING)


ROLLOUTJOBS = (API_GROUP, API_VERSION, "rolloutjobs")
DATASETS = (API_GROUP, API_VERSION, "datasets")


@kopf.on.create(*ROLLOUTJOBS)
def rolloutjob_create(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """A new RolloutJob: children and the first status."""
    with timed("RolloutJob", "create"):
        ensure_rolloutjob(body, patch, memo)


@kopf.on.resume(*ROLLOUTJOBS)
def rolloutjob_resume(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Operator restart: re-create only what is missing."""
    with timed("RolloutJob", "resume"):
        ensure_rolloutjob(body, patch, memo)


@kopf.on.update(*ROLLOUTJOBS, field="spec")
def rolloutjob_update(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Spec edits: suspend and TTL apply; anything else is refused while running."""
    with timed("RolloutJob", "update"):
        if was_invalid(body):
            ensure_rolloutjob(body, patch, memo)
            return
        rt = runtime(memo)
        on_spec_update(rt, body, patch)
        spec = body.get("spec") or {}
        meta = body["metadata"]
        if (body.get("status") or {}).get("phase") not in TERMINAL:
            suspend = bool(spec.get("suspend", False))
            queued = kueue.queued(meta.get("labels"))
            has_server = bool((spec.get("policy") or {}).get("server"))
            value = kueue.suspend_patch(None, suspend, queued, server_ready=not has_server)
            name = c.generator_job_name(meta["name"])
            if value is not None:
                rt.kube.patch("Job", meta["namespace"], name, {"spec": {"suspend": value}})
            if suspend and has_server:
                delete_server(rt, meta["namespace"], meta["name"])


@kopf.on.delete(*ROLLOUTJOBS, optional=True)
def rolloutjob_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Forget the resource (children go by their ownerReferences; no finalizer needed)."""
    rt = runtime(memo)
    uid = body["metadata"]["uid"]
    rt.record_phase("RolloutJob", uid, None)
    rt.locks.pop(uid, None)
    rt.samples.pop(uid, None)
    rt.last_read.pop(uid, None)
    rt.read_errors.pop(uid, None)


def s3_settings(rt: Runtime, spec: S3Spec | None) -> S3Settings:
    """The resource's spec.s3, then the operator's environment; few retries, short timeouts:
    a slow store must not stall status updates (the next timer tick tries again)."""
    base = S3Settings.from_spec(spec)
    return S3Settings(
        endpoint_url=base.endpoint_url or rt.cfg.s3.endpoint_url,
        region=base.region or rt.cfg.s3.region,
        max_attempts=2,
        connect_timeout=3.0,
        read_timeout=10.0,
    )


def read_progress(
    rt: Runtime, job: RolloutJob, uid: str, force: bool, current: Mapping[str, Any]
) -> dict[str, Any]:
    """status.progress/rewards from the shard manifests, at most every progress_seconds;
    nothing when the reading equals `current` (the status) but for its time."""
    now = time.time()
    if not force and now - rt.last_read.get(uid, 0.0) < rt.cfg.timers.progress_seconds:
        return {}
    rt.last_read[uid] = now
    try:
        settings = progress.job_s3_settings(
            s3_settings(rt, job.spec.s3),
            job.spec.s3,
            str(job.metadata.namespace),
            lambda namespace, name: rt.kube.get("Secret", namespace, name),
        )
        found = progress.read_job_manifests(rt.stores.get(settings), job.spec.output.uri)
    except progress.ProgressUnreadable as exc:  # status keeps the last reading, and says why
        problem = str(exc)
        level = logging.DEBUG if rt.read_errors.get(uid) == problem else logging.WARNING
        logging.getLogger(__name__).log(
            level, "%s/%s: %s", job.metadata.namespace, job.metadata.name, problem
        )
        rt.read_errors[uid] = problem
        return {}
    rt.read_errors.pop(uid, None)
    report = progress.aggregate(found, rolloutjob_total_hint(job), rt.samples.get(uid), now)
    rt.samples[uid] = report.sample
    if (
        progress.same_reading(current.get("progress"), report.progress)
        and (current.get("rewards") or {}) == report.rewards
    ):
        return {}
    return {"progress": report.progress, "rewards": report.rewards or None}


def delete_server(rt: Runtime, namespace: str, job_name: str) -> None:
    """Delete the managed model server (its pods go with the Deployment), freeing its GPUs."""
    rt.kube.delete("Deployment", namespace, c.server_name(job_name))
    rt.kube.delete("Service", namespace, c.server_name(job_name))


def finish_rolloutjob(rt: Runtime, job: RolloutJob, observed: st.Observed) -> dict[str, Any]:
    """On a finish: remove the verifier and model server; on success, point at _SUCCESS."""
    namespace = str(job.metadata.namespace)
    if serving.manages_server(job):
        delete_server(rt, namespace, job.metadata.name)
    if builders.needs_verifier_server(job):
        name = c.verifier_name(job.metadata.name)
        rt.kube.delete("Deployment", namespace, name)
        rt.kube.delete("Service", namespace, name)
    if observed.phase == c.SUCCEEDED:
        uri = job.spec.output.uri
        return {"output": {"uri": uri, "manifest": uri.rstrip("/") + "/_SUCCESS"}}
    return {}


@kopf.timer(*ROLLOUTJOBS, interval=TIMERS.reconcile_seconds, initial_delay=TIMERS.reconcile_seconds)
def rolloutjob_timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Child Job and pods -> phase and message; manifests -> progress; TTL on finished jobs."""
    with timed("RolloutJob", "timer"):
        rt = runtime(memo)
        status = body.get("status") or {}
        if not status.get("phase"):
            return
        try:
            job = parse(body)
        except SpecError:
            return
        assert isinstance(job, RolloutJob)
        if status.get("phase") in TERMINAL:
            rt.record_phase("RolloutJob", body["metadata"]["uid"], status["phase"])
            expire_if_due(rt, body, job.spec.ttl_seconds_after_finished)
            return
        with rt.lock(body["metadata"]["uid"]):
            reconcile_rolloutjob(rt, body, patch, job)


def component(pod: Mapping[str, Any]) -> str | None:
    """The app.kubernetes.io/component label of a pod."""
    return ((pod.get("metadata") or {}).get("labels") or {}).get(c.LABEL_COMPONENT)


def reconcile_rolloutjob(rt: Runtime, body: kopf.Body, patch: kopf.Patch, job: RolloutJob) -> None:
    """One status refresh of a running RolloutJob."""
    meta = body["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    gen_name = c.generator_job_name(meta["name"])
    gen = rt.kube.get("Job", namespace, gen_name)
    pods = rt.kube.list("Pod", namespace, {c.LABEL_ROLLOUTJOB: meta["name"]})
    servers = [p for p in pods if component(p) == c.COMPONENT_SERVER]
    server = sync_server(rt, body, patch, job, servers)
    extra: dict[str, Any] = {"output": {"uri": job.spec.output.uri}}
    extra["viewerPath"] = viewer_path_for(namespace, meta["name"])
    gen_suspended = gen is not None and bool((gen.get("spec") or {}).get("suspend"))
    if gen is None or (gen_suspended and not job.spec.suspend):
        blocked, base_url = gate_generators(rt, job, server)
        if blocked is not None:
            if blocked.phase == c.FAILED:
                extra.update(finish_rolloutjob(rt, job, blocked))
                server = st.ServerState(False, blocked.reason, blocked.message)
            desired = write_status(body, patch, blocked, extra, server)
            rt.record_phase("RolloutJob", uid, desired.get("phase"))
            return
        if gen is None:
            if serving.generators_wait(job) and not serving.manages_server(job):
                resolved = builders.build_spec_configmap(job, base_url)  # the URL found now
                name = resolved["metadata"]["name"]
                rt.kube.patch("ConfigMap", namespace, name, {"data": resolved["data"]})
            create_children(rt, body, patch, rolloutjob_children(job, rt.cfg, base_url))
            gen = rt.kube.get("Job", namespace, gen_name)
    if gen is not None:
        queued = kueue.queued(job.metadata.labels)
        ready = server is None or server.ready
        value = kueue.suspend_patch(gen_suspended, job.spec.suspend, queued, ready)
        if value is not None:
            rt.kube.patch("Job", namespace, gen_name, {"spec": {"suspend": value}})
            gen["spec"]["suspend"] = value
    generators = [p for p in pods if component(p) == c.COMPONENT_GENERATOR]
    verifiers = [p for p in pods if component(p) == c.COMPONENT_VERIFIER]
    observed = st.job_state(gen, generators, "shards", support_pods=verifiers)
    queue = (job.metadata.labels or {}).get(c.KUEUE_QUEUE_LABEL)
    observed = st.admission_state(observed, job.spec.suspend, queue)
    finished = observed.phase in TERMINAL
    extra.update(read_progress(rt, job, uid, finished, body.get("status") or {}))
    if finished:
        extra.update(finish_rolloutjob(rt, job, observed))
        server = st.ServerState(False, c.REASON_SERVER_DELETED, "deleted: the job finished")
    problem = rt.read_errors.get(uid)
    if problem:
        observed = replace(observed, message=f"{observed.message}; {problem}")
    desired = write_status(body, patch, observed, extra, server, progress_problem=problem)
    rt.record_phase("RolloutJob", uid, desired.get("phase"))


def sync_server(
    rt: Runtime, body: kopf.Body, patch: kopf.Patch, job: RolloutJob, pods: list[dict[str, Any]]
) -> st.ServerState | None:
    """The managed model server's state; it is deleted while the job is suspended and
    (re-)created otherwise. None without policy.server."""
    server = job.spec.policy.server
    if server is None:
        return None
    namespace, name = str(job.metadata.namespace), job.metadata.name
    deployment = rt.kube.get("Deployment", namespace, c.server_name(name))
    if job.spec.suspend:
        if deployment is not None:
            delete_server(rt, namespace, name)
        return st.ServerState(False, c.REASON_SERVER_DELETED, "deleted while suspended")
    if deployment is None:
        children = [builders.build_server_deployment(job), builders.build_server_service(job)]
        create_children(rt, body, patch, children)
    now = datetime.datetime.now(tz=datetime.UTC)
    return st.server_state(deployment, pods, server.startup_timeout_seconds, now)


def gate_generators(
    rt: Runtime, job: RolloutJob, server: st.ServerState | None
) -> tuple[st.Observed | None, str | None]:
    """(why the generators may not run yet, or None; the base URL they call)."""
    if job.spec.suspend:
        message = "suspended; set spec.suspend false to resume"
        return st.Observed(c.SUSPENDED, c.REASON_SUSPENDED, message), None
    if server is not None and not server.ready:
        if server.timed_out:
            return st.Observed(c.FAILED, c.REASON_SERVER_TIMEOUT, server.message), None
        return st.Observed(c.PENDING, server.reason, server.message), None
    ref = job.spec.policy.endpoint_ref
    if ref is not None and ref.kind == "InferenceService":
        namespace = ref.namespace or str(job.metadata.namespace)
        found = rt.kube.get("InferenceService", namespace, ref.name)
        url = serving.inference_service_url(ref, found)
        if url is None:
            message = f"waiting for InferenceService {namespace}/{ref.name} to publish status.url"
            return st.Observed(c.PENDING, c.REASON_ENDPOINT_PENDING, message), None
        return None, url
    return None, serving.static_base_url(job)


# ----------------------------------------------------------------------------- Dataset


def ensure_dataset(body: kopf.Body, patch: kopf.Patch, memo: Any) -> None:
    """Validate; the first status (the builder waits for the sources, see the timer)."""
    rt = runtime(memo)
    status = body.get("status") or {}
    if status.get("phase") in TERMINAL and not was_invalid(body):
        return
    try:
        dataset = parse(body)
    except SpecError as error:
        rt.record_phase("Dataset", body["metadata"]["uid"], c.FAILED)
        fail_invalid(body, patch, error)
        return
    assert isinstance(dataset, Dataset)
    if not status.get("phase") or was_invalid(body):
        observed = st.Observed(c.PENDING, c.REASON_WAITING, "checking the sources")
        write_status(body, patch, observed, FRESH_START)
        rt.record_phase("Dataset", body["metadata"]["uid"], c.PENDING)


@kopf.on.create(*DATASETS)
def dataset_create(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """A new Dataset."""
    with timed("Dataset", "create"):
        ensure_dataset(body, patch, memo)


@kopf.on.resume(*DATASETS)
def dataset_resume(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Operator restart."""
    with timed("Dataset", "resume"):
        ensure_dataset(body, patch, memo)


@kopf.on.update(*DATASETS, field="spec")
def dataset_update(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Spec edits: only the TTL may change once the build was started."""
    with timed("Dataset", "update"):
        if was_invalid(body):
            ensure_dataset(body, patch, memo)
            return
        on_spec_update(runtime(memo), body, patch)


@kopf.on.delete(*DATASETS, optional=True)
def dataset_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Forget the resource (the builder Job goes by its ownerReference)."""
    runtime(memo).record_phase("Dataset", body["metadata"]["uid"], None)


@kopf.timer(*DATASETS, interval=TIMERS.reconcile_seconds, initial_delay=TIMERS.reconcile_seconds)
def dataset_timer(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Sources -> builder Job -> phase; the builder's result file -> counts; TTL."""
    with timed("Dataset", "timer"):
        rt = runtime(memo)
        status = body.get("status") or {}
        if not status.get("phase"):
            return
        try:
            dataset = parse(body)
        except SpecError:
            return
        assert isinstance(dataset, Dataset)
        if status.get("phase") in TERMINAL:
            rt.record_phase("Dataset", body["metadata"]["uid"], status["phase"])
            expire_if_due(rt, body, dataset.spec.ttl_seconds_after_finished)
            return
        reconcile_dataset(rt, body, patch, dataset)


def resolve_sources(rt: Runtime, dataset: Dataset) -> tuple[st.Observed | None, list[str]]:
    """Output prefixes of the referenced RolloutJobs, or why the build cannot start yet."""
    namespace = str(dataset.metadata.namespace)
    uris: list[str] = []
    waiting: list[str] = []
    for source in dataset.spec.sources:
        if source.rollout_job_ref is None:
            continue
        ref = source.rollout_job_ref
        found = rt.kube.get("RolloutJob", namespace, ref)
        if found is None:
            message = f"RolloutJob {ref} not found"
            return st.Observed(c.PENDING, c.REASON_SOURCE_MISSING, message), []
        status = found.get("status") or {}
        phase = status.get("phase") or c.PENDING
        if phase == c.FAILED:
            message = f"source RolloutJob {ref} failed: {status.get('message', '')}".rstrip(": ")
            return st.Observed(c.FAILED, c.REASON_SOURCE_FAILED, message), []
        if phase != c.SUCCEEDED:
            summary = (status.get("progress") or {}).get("summary", "")
            waiting.append(f"{ref} ({phase}{', ' + summary if summary else ''})")
            continue
        uris.append((status.get("output") or {}).get("uri") or found["spec"]["output"]["uri"])
    if waiting:
        message = "waiting for RolloutJob " + ", ".join(waiting)
        return st.Observed(c.PENDING, c.REASON_WAITING, message), []
    return None, uris


def read_dataset_result(rt: Runtime, dataset: Dataset) -> dict[str, Any]:
    """status.counts/splits/files/card from the builder's result file, when it wrote one."""
    uri = dataset.spec.output.uri.rstrip("/") + "/" + DATASET_RESULT_FILE
    try:
        settings = progress.job_s3_settings(
            s3_settings(rt, dataset.spec.s3),
            dataset.spec.s3,
            str(dataset.metadata.namespace),
            lambda namespace, name: rt.kube.get("Secret", namespace, name),
        )
        result = json.loads(rt.stores.get(settings).read_bytes(uri))
    except Exception as exc:  # the file is optional; status just lacks the counts
        logging.getLogger(__name__).info("no dataset result at %s: %s", uri, exc)
        return {}
    picked = {key: result.get(key) for key in ("counts", "splits", "files", "card")}
    try:
        from gym_operator.api import DatasetStatus

        return DatasetStatus.model_validate(picked).wire()
    except ValueError as exc:
        logging.getLogger(__name__).warning("unexpected dataset result at %s: %s", uri, exc)
        return {}


def reconcile_dataset(rt: Runtime, body: kopf.Body, patch: kopf.Patch, dataset: Dataset) -> None:
    """One refresh: wait for sources, start the builder, follow it."""
    meta = body["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    job_name = c.builder_job_name(meta["name"])
    builder = rt.kube.get("Job", namespace, job_name)
    if builder is None:
        blocked, uris = resolve_sources(rt, dataset)
        if blocked is not None:
            desired = write_status(body, patch, blocked)
            rt.record_phase("Dataset", uid, desired.get("phase"))
            return
        children = [
            builders.build_spec_configmap(dataset),
            builders.build_dataset_job(dataset, uris, rt.cfg),
        ]
        create_children(rt, body, patch, children)
        record_applied_spec(body, patch)  # from here on, the spec the builder runs is fixed
        builder = rt.kube.get("Job", namespace, job_name)
    labels = {c.LABEL_DATASET: meta["name"], c.LABEL_COMPONENT: c.COMPONENT_BUILDER}
    pods = rt.kube.list("Pod", namespace, labels)
    observed = st.job_state(builder, pods, "builder pods")
    queue = (dataset.metadata.labels or {}).get(c.KUEUE_QUEUE_LABEL)
    observed = st.admission_state(observed, False, queue)
    extra = read_dataset_result(rt, dataset) if observed.phase == c.SUCCEEDED else {}
    desired = write_status(body, patch, observed, extra)
    rt.record_phase("Dataset", uid, desired.get("phase"))

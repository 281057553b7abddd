"""The RolloutJob reconcile: the one place that creates or deletes its children and sets status.

Each run reads the world (the generator Job, the pods, the model server, the shard manifests),
computes what should exist, acts, and returns one status patch (empty when nothing changed).
Children: a spec ConfigMap, a verifier Deployment + Service (built-in or image verifier), the
managed model server (policy.server) and one Indexed generator Job. No kopf here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from gym_operator.api import Phase, RolloutJob, RolloutJobStatus
from gym_operator.controller import builders, endpoint, kueue, progress, serverbuilders, serving
from gym_operator.controller import constants as c
from gym_operator.controller.conditions import (
    Aspect,
    Observed,
    progress_aspect,
    spec_aspect,
)
from gym_operator.controller.jobstate import admission_state, job_state
from gym_operator.controller.reconcile import (
    Event,
    Outcome,
    applied_spec,
    conclude,
    create_children,
    pass_over,
    record_applied_spec,
    refused_fields,
    spec_refusal_events,
)
from gym_operator.controller.runtime import Runtime
from gym_operator.controller.serverstate import ServerState, server_condition
from gym_operator.controller.viewerlink import viewer_path

log = logging.getLogger(__name__)
Body = Mapping[str, Any]


def reconcile(rt: Runtime, body: Body) -> Outcome:
    """One pass over an admitted RolloutJob (the handlers set its first phase)."""
    return pass_over(rt, RolloutJobStatus, body, follow)


def where_output_is(rt: Runtime, job: RolloutJob) -> dict[str, Any]:
    """Status fields naming the output prefix and, with a viewer installed, the job's page."""
    fields: dict[str, Any] = {"output": {"uri": job.spec.output.uri}}
    page = viewer_path(str(job.metadata.namespace), job.metadata.name, rt.cfg.viewer_namespace)
    if page:
        fields["viewerPath"] = page
    return fields


def first_status(job: RolloutJob) -> dict[str, Any]:
    """Status fields of a fresh start: where the output goes, nothing done yet."""
    total = total_hint(job)
    return {
        "output": {"uri": job.spec.output.uri},
        "progress": {"completed": 0, "failed": 0, "summary": f"0/{total or '?'}"},
    }


def children(
    job: RolloutJob, rt: Runtime, base_url: str | None, generators: bool
) -> list[dict[str, Any]]:
    """Every child of a RolloutJob in creation order (the spec first, the generators last, and
    only when `generators`); the model server unless the job is suspended."""
    made = support_children(job, rt, base_url)
    if serving.manages_server(job) and not job.spec.suspend:
        made += [
            serverbuilders.build_server_deployment(job),
            serverbuilders.build_server_service(job),
        ]
    if generators:
        made.append(builders.build_generator_job(job, rt.cfg))
    return made


def support_children(job: RolloutJob, rt: Runtime, base_url: str | None) -> list[dict[str, Any]]:
    """The spec ConfigMap (the policy resolved to `base_url`, else to the URL known without
    asking the cluster) and the verifier Deployment + Service (for builtin and image)."""
    made = [builders.build_spec_configmap(job, base_url or serving.static_base_url(job))]
    if builders.needs_verifier_server(job):
        made += [
            builders.build_verifier_deployment(job, rt.cfg),
            builders.build_verifier_service(job, rt.cfg),
        ]
    return made


def total_hint(job: RolloutJob) -> int | None:
    """Rollouts expected before the shards know: limit x repeats, when a limit is set."""
    if job.spec.input.limit is None:
        return None
    return job.spec.input.limit * job.spec.sampling.num_repeats


def component(pod: Mapping[str, Any]) -> str | None:
    """The app.kubernetes.io/component label of a pod."""
    return ((pod.get("metadata") or {}).get("labels") or {}).get(c.LABEL_COMPONENT)


def follow(rt: Runtime, body: Body, job: RolloutJob, outcome: Outcome) -> Outcome:
    """Observe, act, conclude."""
    namespace, name = str(job.metadata.namespace), job.metadata.name
    gen = rt.kube.get("Job", namespace, c.generator_job_name(name))
    pods = rt.kube.list("Pod", namespace, {c.LABEL_ROLLOUTJOB: name})
    generators = [p for p in pods if component(p) == c.COMPONENT_GENERATOR]
    verifiers = [p for p in pods if component(p) == c.COMPONENT_VERIFIER]
    if gen is not None and job_state(gen, generators).phase.is_terminal():
        return conclude_job(rt, body, job, outcome, gen, generators, verifiers, None)
    server = endpoint.sync_server(
        rt, body, job, [p for p in pods if component(p) == c.COMPONENT_SERVER]
    )
    if gen is None and not serving.generators_wait(job):
        gen = start(rt, body, job, outcome, serving.static_base_url(job))
    elif gen is None or (gen["spec"].get("suspend") and not job.spec.suspend):
        blocked, base_url = endpoint.gate(rt, job, server)
        if blocked is not None:
            return hold(rt, body, job, outcome, blocked, server, created=gen is not None)
        gen = gen or start(rt, body, job, outcome, base_url, resolved=True)
    else:
        restore(rt, body, job, outcome)
    resume_or_suspend(rt, job, gen, server)
    return conclude_job(rt, body, job, outcome, gen, generators, verifiers, server)


def start(
    rt: Runtime,
    body: Body,
    job: RolloutJob,
    outcome: Outcome,
    base_url: str | None,
    resolved: bool = False,
) -> dict[str, Any] | None:
    """Create every child (the generator Job last); the Job as created."""
    namespace = str(job.metadata.namespace)
    if resolved and not serving.manages_server(job):
        spec = builders.build_spec_configmap(job, base_url)  # the URL found now
        rt.kube.patch("ConfigMap", namespace, spec["metadata"]["name"], {"data": spec["data"]})
    created = create_children(rt, body, children(job, rt, base_url, generators=True))
    record_applied_spec(body, outcome)
    if created:
        message = f"created {created} child objects"
        outcome.events.append(Event(c.REASON_CREATED, message))
    return rt.kube.get("Job", namespace, c.generator_job_name(job.metadata.name))


def hold(
    rt: Runtime,
    body: Body,
    job: RolloutJob,
    outcome: Outcome,
    blocked: Observed,
    server: ServerState | None,
    created: bool,
) -> Outcome:
    """The generators may not run yet: the other children exist (or, when the wait failed,
    go), and status says what is awaited."""
    extra: dict[str, Any] = where_output_is(rt, job)
    if blocked.phase == Phase.FAILED:
        extra.update(finish(rt, job, blocked))
        server = ServerState(False, blocked.reason, blocked.message)
    elif not created and applied_spec(body) is None:  # the first pass: make the rest now
        made = create_children(rt, body, children(job, rt, None, generators=False))
        record_applied_spec(body, outcome)
        if made:
            outcome.events.append(Event(c.REASON_CREATED, f"created {made} child objects"))
    aspects = [server_condition(server)] if server is not None else []
    return conclude(rt, RolloutJobStatus, body, blocked, extra, aspects, outcome)


def restore(rt: Runtime, body: Body, job: RolloutJob, outcome: Outcome) -> None:
    """Re-create a support child that was deleted while the job runs."""
    namespace = str(job.metadata.namespace)
    wanted = support_children(job, rt, None)
    missing = [
        m for m in wanted if rt.kube.get(m["kind"], namespace, m["metadata"]["name"]) is None
    ]
    if not missing:
        return
    _, base_url = endpoint.base_url(rt, job)
    names = {(m["kind"], m["metadata"]["name"]) for m in missing}
    rebuilt = [
        m
        for m in support_children(job, rt, base_url)
        if (m["kind"], m["metadata"]["name"]) in names
    ]
    made = create_children(rt, body, rebuilt)
    if made:
        kinds = ", ".join(sorted(f"{kind} {name}" for kind, name in names))
        outcome.events.append(Event(c.REASON_RESTORED, f"re-created {kinds}", warning=True))


def resume_or_suspend(
    rt: Runtime, job: RolloutJob, gen: dict[str, Any] | None, server: ServerState | None
) -> None:
    """Apply spec.suspend to the generator Job; never un-suspend one Kueue admits."""
    if gen is None:
        return
    queued = kueue.queued(job.metadata.labels)
    ready = server is None or server.ready
    value = kueue.suspend_patch(bool(gen["spec"].get("suspend")), job.spec.suspend, queued, ready)
    if value is not None:
        name = gen["metadata"]["name"]
        rt.kube.patch("Job", str(job.metadata.namespace), name, {"spec": {"suspend": value}})
        gen["spec"]["suspend"] = value


def conclude_job(
    rt: Runtime,
    body: Body,
    job: RolloutJob,
    outcome: Outcome,
    gen: dict[str, Any] | None,
    generators: list[dict[str, Any]],
    verifiers: list[dict[str, Any]],
    server: ServerState | None,
) -> Outcome:
    """Phase from the Job and pods, progress from the manifests, clean-up on a finish."""
    uid = str(body["metadata"]["uid"])
    observed = job_state(gen, generators, "shards", support_pods=verifiers)
    queue = (job.metadata.labels or {}).get(c.KUEUE_QUEUE_LABEL)
    observed = admission_state(observed, job.spec.suspend, queue)
    finished = observed.phase.is_terminal()
    extra: dict[str, Any] = where_output_is(rt, job)
    running = observed.phase == Phase.RUNNING
    extra.update(read_progress(rt, job, uid, finished, body.get("status") or {}, running))
    aspects: list[Aspect] = []
    if finished:
        extra.update(finish(rt, job, observed))
        if serving.manages_server(job):
            server = ServerState(False, c.REASON_SERVER_DELETED, "deleted: the job finished")
    else:
        refused = refused_fields(body)
        aspects.append(spec_aspect(refused))
        outcome.events += spec_refusal_events(body, refused)
    problem = rt.read_errors.get(uid)
    if problem:
        observed = Observed(observed.phase, observed.reason, f"{observed.message}; {problem}")
    aspects.append(progress_aspect(problem))
    if server is not None:
        aspects.append(server_condition(server))
    return conclude(rt, RolloutJobStatus, body, observed, extra, aspects, outcome)


def finish(rt: Runtime, job: RolloutJob, observed: Observed) -> dict[str, Any]:
    """On a finish: remove the verifier and model server; on success, point at _SUCCESS."""
    namespace = str(job.metadata.namespace)
    if serving.manages_server(job):
        endpoint.delete_server(rt, job)
    if builders.needs_verifier_server(job):
        name = c.verifier_name(job.metadata.name)
        rt.kube.delete("Deployment", namespace, name)
        rt.kube.delete("Service", namespace, name)
    if observed.phase == Phase.SUCCEEDED:
        uri = job.spec.output.uri
        return {"output": {"uri": uri, "manifest": uri.rstrip("/") + "/_SUCCESS"}}
    return {}


def read_progress(
    rt: Runtime,
    job: RolloutJob,
    uid: str,
    force: bool,
    current: Mapping[str, Any],
    running: bool,
) -> dict[str, Any]:
    """status.progress/rewards from the shard manifests, at most every progress_seconds;
    nothing when the reading equals `current` (the status) but for its time. `running`: the
    generator pods sample now (else no concurrency limit is shown)."""
    now = time.time()
    if not force and now - rt.last_read.get(uid, 0.0) < rt.cfg.timers.progress_seconds:
        return {}
    rt.last_read[uid] = now
    try:
        settings = rt.s3_settings(job.spec.s3, str(job.metadata.namespace))
        found = progress.read_job_manifests(rt.stores.get(settings), job.spec.output.uri)
    except progress.ProgressUnreadable as exc:  # status keeps the last reading, and says why
        problem = str(exc)
        level = logging.DEBUG if rt.read_errors.get(uid) == problem else logging.WARNING
        log.log(level, "%s/%s: %s", job.metadata.namespace, job.metadata.name, problem)
        rt.read_errors[uid] = problem
        return {}
    rt.read_errors.pop(uid, None)
    report = progress.aggregate(found, total_hint(job), rt.samples.get(uid), now, running=running)
    rt.samples[uid] = report.sample
    if (
        progress.same_reading(current.get("progress"), report.progress)
        and (current.get("rewards") or {}) == report.rewards
    ):
        return {}
    return {"progress": report.progress, "rewards": report.rewards or None}

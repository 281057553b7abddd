"""A RolloutJob's model endpoint as the reconcile sees it: the managed server and the gate.

The managed model server (policy.server) is created unless the job is suspended, deleted while
it is and when the job ends; the generators wait for it to be ready, or for a KServe
InferenceService to publish its URL. No kopf here.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from gym_operator.api import Phase, RolloutJob
from gym_operator.controller import constants as c
from gym_operator.controller import reconcile, serverbuilders, serving
from gym_operator.controller.conditions import Observed
from gym_operator.controller.runtime import Runtime
from gym_operator.controller.serverstate import ServerState, server_state

Body = Mapping[str, Any]
SUSPENDED_MESSAGE = "suspended; set spec.suspend false to resume"


def delete_server(rt: Runtime, job: RolloutJob) -> None:
    """Delete the managed model server (its pods go with the Deployment), freeing its GPUs."""
    namespace, name = str(job.metadata.namespace), c.server_name(job.metadata.name)
    rt.kube.delete("Deployment", namespace, name)
    rt.kube.delete("Service", namespace, name)


def sync_server(
    rt: Runtime, owner: Body, job: RolloutJob, pods: list[dict[str, Any]]
) -> ServerState | None:
    """The managed model server's state, after deleting it while the job is suspended or
    creating it when missing. None without policy.server."""
    server = job.spec.policy.server
    if server is None:
        return None
    namespace, name = str(job.metadata.namespace), job.metadata.name
    deployment = rt.kube.get("Deployment", namespace, c.server_name(name))
    if job.spec.suspend:
        if deployment is not None:
            delete_server(rt, job)
        return ServerState(False, c.REASON_SERVER_DELETED, "deleted while suspended")
    if deployment is None:
        children = [
            serverbuilders.build_server_deployment(job),
            serverbuilders.build_server_service(job),
        ]
        reconcile.create_children(rt, owner, children)
    now = datetime.datetime.now(tz=datetime.UTC)
    return server_state(deployment, pods, server.startup_timeout_seconds, now)


def base_url(rt: Runtime, job: RolloutJob) -> tuple[Observed | None, str | None]:
    """(why the endpoint's URL is not known yet, or None; the base URL the generators call)."""
    ref = job.spec.policy.endpoint_ref
    if ref is None or ref.kind != "InferenceService":
        return None, serving.static_base_url(job)
    namespace = ref.namespace or str(job.metadata.namespace)
    url = serving.inference_service_url(ref, rt.kube.get("InferenceService", namespace, ref.name))
    if url is None:
        message = f"waiting for InferenceService {namespace}/{ref.name} to publish status.url"
        return Observed(Phase.PENDING, c.REASON_ENDPOINT_PENDING, message), None
    return None, url


def gate(
    rt: Runtime, job: RolloutJob, server: ServerState | None
) -> tuple[Observed | None, str | None]:
    """(why the generators may not run yet, or None; the base URL they call)."""
    if job.spec.suspend:
        return Observed(Phase.SUSPENDED, c.REASON_SUSPENDED, SUSPENDED_MESSAGE), None
    if server is not None and not server.ready:
        if server.timed_out:
            return Observed(Phase.FAILED, c.REASON_SERVER_TIMEOUT, server.message), None
        return Observed(Phase.PENDING, server.reason, server.message), None
    return base_url(rt, job)

"""Where a RolloutJob's generators send model requests: pure URL resolution, no I/O.

policy.baseURL (policy.baseURLs: the first, for the gate) is used as is; policy.server is the
Service of the operator's own model server; policy.endpointRef is a Service's cluster DNS name, or
a KServe InferenceService's status.url.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gym_operator.api import RolloutJob
from gym_operator.api.serving import EndpointRef
from gym_operator.controller import constants as c

OPENAI_PATH = "/v1"
"""Where OpenAI-compatible servers (vLLM, SGLang, llama.cpp) serve the API."""


def manages_server(job: RolloutJob) -> bool:
    """Whether the operator runs the job's model server (policy.server)."""
    return job.spec.policy.server is not None


def model_server_url(job: RolloutJob) -> str:
    """Base URL of the managed model server: its Service in the job's namespace."""
    server = job.spec.policy.server
    assert server is not None
    return f"http://{c.server_name(job.metadata.name)}:{server.port}{OPENAI_PATH}"


def service_url(ref: EndpointRef, namespace: str | None) -> str:
    """Base URL of a referenced Service; its cluster DNS name when in another namespace."""
    host = ref.name
    if ref.namespace and ref.namespace != namespace:
        host = f"{ref.name}.{ref.namespace}.svc"
    return f"http://{host}:{ref.port}{ref.api_path()}"


def inference_service_url(ref: EndpointRef, body: Mapping[str, Any] | None) -> str | None:
    """Base URL of a referenced InferenceService: its status.url and the OpenAI path; None
    until KServe has published a URL."""
    url = str(((body or {}).get("status") or {}).get("url") or "")
    if not url:
        return None
    return url.rstrip("/") + ref.api_path()


def static_base_url(job: RolloutJob) -> str | None:
    """The base URL when it is known without asking the cluster (all but InferenceService)."""
    policy = job.spec.policy
    if policy.urls():
        return policy.urls()[0]
    if policy.server is not None:
        return model_server_url(job)
    ref = policy.endpoint_ref
    if ref is not None and ref.kind == "Service":
        return service_url(ref, job.metadata.namespace)
    return None


def generators_wait(job: RolloutJob) -> bool:
    """Whether the generator Job waits for something first: the managed server to be ready,
    or an InferenceService's URL (then the status timer creates it, not the create handler)."""
    ref = job.spec.policy.endpoint_ref
    return manages_server(job) or (ref is not None and ref.kind == "InferenceService")


def worker_policy(job: RolloutJob, base_url: str) -> dict[str, Any]:
    """The policy the workers read: server/endpointRef replaced by the URL they resolved to."""
    policy = job.spec.policy.wire()
    policy.pop("server", None)
    policy.pop("endpointRef", None)
    if "baseURLs" not in policy:
        policy["baseURL"] = base_url
    policy["model"] = job.spec.policy.model_name()
    return policy

"""Pure builders: a parsed RolloutJob or Dataset in, Kubernetes manifests (dicts) out. No I/O.

The spec ConfigMap, the verifier Deployment + Service, the Indexed generator Job and the dataset
builder Job; their shared pod parts are in podparts.py, the model server's in serverbuilders.py.
"""

from __future__ import annotations

import json
from typing import Any

from gym_operator.api import Dataset, RolloutJob
from gym_operator.controller import constants as c
from gym_operator.controller import kueue, serving
from gym_operator.controller.config import OperatorConfig
from gym_operator.controller.podparts import (
    Manifest,
    container_security_context,
    labels_for,
    object_meta,
    pod_metadata,
    pod_spec,
    s3_env,
    selector_for,
    template_env,
    worker_container,
    worker_mounts,
    worker_volumes,
)
from gym_operator.errors import ExitCode


def resource_document(
    resource: RolloutJob | Dataset, base_url: str | None = None
) -> dict[str, Any]:
    """The resource as the worker reads it: apiVersion, kind, name/namespace and the spec; a
    policy.server or policy.endpointRef becomes the baseURL it resolved to."""
    meta = {"name": resource.metadata.name}
    if resource.metadata.namespace:
        meta["namespace"] = resource.metadata.namespace
    spec = resource.spec.wire()
    if isinstance(resource, RolloutJob) and base_url is not None:
        spec["policy"] = serving.worker_policy(resource, base_url)
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": meta,
        "spec": spec,
    }


def build_spec_configmap(resource: RolloutJob | Dataset, base_url: str | None = None) -> Manifest:
    """The ConfigMap the worker pods mount at /etc/gymops: spec.json (+ verifier.json)."""
    name = resource.metadata.name
    kind_label = c.LABEL_ROLLOUTJOB if isinstance(resource, RolloutJob) else c.LABEL_DATASET
    document = resource_document(resource, base_url)
    data = {c.SPEC_FILE: json.dumps(document, indent=2, sort_keys=True)}
    if isinstance(resource, RolloutJob) and resource.spec.verifier.builtin:
        data[c.VERIFIER_CONFIG_FILE] = json.dumps(resource.spec.verifier.config, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(
            c.spec_configmap_name(name),
            resource.metadata.namespace,
            labels_for(kind_label, name, c.COMPONENT_SPEC),
        ),
        "data": data,
    }


def needs_verifier_server(job: RolloutJob) -> bool:
    """A built-in or image verifier runs as a Deployment + Service; a URL verifier does not."""
    return job.spec.verifier.url is None


def verifier_port(job: RolloutJob, cfg: OperatorConfig) -> int:
    """The port the verifier server listens on."""
    if job.spec.verifier.builtin is not None:
        return cfg.worker.verifier_port
    return job.spec.verifier.port


def verifier_url(job: RolloutJob, cfg: OperatorConfig) -> str:
    """The URL generator pods call: the Service of our verifier, or the user's URL."""
    if job.spec.verifier.url is not None:
        return job.spec.verifier.url
    return f"http://{c.verifier_name(job.metadata.name)}:{verifier_port(job, cfg)}"


def build_verifier_deployment(job: RolloutJob, cfg: OperatorConfig) -> Manifest:
    """The verifier server Deployment (built-in: our image with verify-server; or the user's)."""
    name = job.metadata.name
    verifier = job.spec.verifier
    labels = labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER)
    port = verifier_port(job, cfg)
    template = job.spec.template
    if verifier.builtin is not None:
        args = [
            "verify-server",
            "--verifier",
            verifier.builtin,
            "--config",
            f"@{c.SPEC_DIR}/{c.VERIFIER_CONFIG_FILE}",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--timeout",
            str(verifier.timeout_seconds),
        ]
        container = worker_container(
            c.CONTAINER_VERIFIER, args, template_env(template), template, cfg
        )
        volumes = worker_volumes(name)
    else:
        assert verifier.image is not None
        container = {
            "name": c.CONTAINER_VERIFIER,
            "image": verifier.image,
            "env": template_env(template),
            "volumeMounts": worker_mounts(with_spec=False),
            "securityContext": container_security_context(),
        }
        volumes = [{"name": "tmp", "emptyDir": {}}]
    container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    container["readinessProbe"] = {"tcpSocket": {"port": "http"}, "periodSeconds": 5}
    if verifier.resources:
        container["resources"] = verifier.resources
    spec = pod_spec([container], template, volumes)
    spec["restartPolicy"] = "Always"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(c.verifier_name(name), job.metadata.namespace, labels),
        "spec": {
            "replicas": verifier.replicas,
            "selector": {
                "matchLabels": selector_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER)
            },
            "template": {"metadata": pod_metadata(labels, template), "spec": spec},
        },
    }


def build_verifier_service(job: RolloutJob, cfg: OperatorConfig) -> Manifest:
    """The ClusterIP Service in front of the verifier Deployment."""
    name = job.metadata.name
    port = verifier_port(job, cfg)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            c.verifier_name(name),
            job.metadata.namespace,
            labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER),
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def generator_env(job: RolloutJob) -> list[Manifest]:
    """Generator environment: API key and S3 credentials by Secret reference, never copied."""
    env: list[Manifest] = []
    ref = job.spec.policy.api_key_secret_ref
    if ref is not None:
        env.append(
            {
                "name": job.spec.policy.api_key_env,
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    return env + s3_env(job.spec.s3) + template_env(job.spec.template)


def pod_failure_policy() -> Manifest:
    """A bad spec or an output conflict fails the shard at once, a job over its failurePolicy
    fails the Job at once; node drains and preemption do not count as failures."""
    return {
        "rules": [
            {
                "action": "FailIndex",
                "onExitCodes": {
                    "containerName": c.CONTAINER_GENERATOR,
                    "operator": "In",
                    "values": [int(ExitCode.BAD_SPEC), int(ExitCode.CONFLICT)],
                },
            },
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": c.CONTAINER_GENERATOR,
                    "operator": "In",
                    "values": [int(ExitCode.TOO_MANY_FAILURES)],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }


def build_generator_job(job: RolloutJob, cfg: OperatorConfig) -> Manifest:
    """The Indexed Job: one pod per shard, JOB_COMPLETION_INDEX is the shard number."""
    name = job.metadata.name
    spec = job.spec
    labels = labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_GENERATOR)
    args = ["generate", "--spec", c.SPEC_PATH, "--verifier-url", verifier_url(job, cfg)]
    port = cfg.worker.generator_metrics_port
    if port:
        args += ["--metrics-port", str(port)]
    container = worker_container(
        c.CONTAINER_GENERATOR, args, generator_env(job), spec.template, cfg
    )
    if port:
        container["ports"] = [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    queue = kueue.labels(job.metadata.labels)
    manifest: Manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(
            c.generator_job_name(name), job.metadata.namespace, {**queue, **labels}
        ),
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.parallelism,
            "parallelism": spec.parallelism,
            "backoffLimitPerIndex": spec.backoff_limit_per_index,
            "podFailurePolicy": pod_failure_policy(),
            "suspend": spec.suspend or kueue.queued(job.metadata.labels),
            "template": {
                "metadata": pod_metadata(labels, spec.template),
                "spec": pod_spec([container], spec.template, worker_volumes(name)),
            },
        },
    }
    if spec.job_managed_by:
        manifest["spec"]["managedBy"] = spec.job_managed_by
    return manifest


def builder_failure_policy() -> Manifest:
    """A spec the builder cannot use fails the Job at once (a retry would fail the same way);
    node drains and preemption do not count as failures."""
    return {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": c.CONTAINER_BUILDER,
                    "operator": "In",
                    "values": [int(ExitCode.BAD_SPEC)],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }


def build_dataset_job(dataset: Dataset, source_uris: list[str], cfg: OperatorConfig) -> Manifest:
    """The builder Job of a Dataset, reading the resolved output prefixes of its RolloutJobs."""
    name = dataset.metadata.name
    spec = dataset.spec
    labels = labels_for(c.LABEL_DATASET, name, c.COMPONENT_BUILDER)
    args = ["build-dataset", "--spec", c.SPEC_PATH]
    for uri in source_uris:
        args += ["--source-uri", uri]
    env = s3_env(spec.s3) + template_env(spec.template)
    container = worker_container(c.CONTAINER_BUILDER, args, env, spec.template, cfg)
    queue = kueue.labels(dataset.metadata.labels)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(
            c.builder_job_name(name), dataset.metadata.namespace, {**queue, **labels}
        ),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": cfg.worker.builder_backoff_limit,
            "podFailurePolicy": builder_failure_policy(),
            "suspend": kueue.queued(dataset.metadata.labels),
            "template": {
                "metadata": pod_metadata(labels, spec.template),
                "spec": pod_spec([container], spec.template, worker_volumes(name)),
            },
        },
    }

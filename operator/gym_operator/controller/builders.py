"""Pure builders: a parsed RolloutJob or Dataset in, Kubernetes manifests (dicts) out. No I/O."""

from __future__ import annotations

import json
from typing import Any

from gym_operator.api import Dataset, RolloutJob
from gym_operator.api.common import EnvVar, PodTemplate, S3Spec
from gym_operator.controller import constants as c
from gym_operator.controller import kueue, serving
from gym_operator.controller.config import OperatorConfig
from gym_operator.errors import ExitCode

Manifest = dict[str, Any]


def labels_for(kind_label: str, owner: str, component: str) -> dict[str, str]:
    """The labels every child carries: who made it, for which resource, which part it is."""
    return {
        c.LABEL_NAME: c.APP_NAME,
        c.LABEL_MANAGED_BY: c.MANAGED_BY,
        c.LABEL_INSTANCE: owner,
        c.LABEL_COMPONENT: component,
        kind_label: owner,
    }


def _meta(name: str, namespace: str | None, labels: dict[str, str]) -> Manifest:
    meta: Manifest = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return meta


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
        "metadata": _meta(
            c.spec_configmap_name(name),
            resource.metadata.namespace,
            labels_for(kind_label, name, c.COMPONENT_SPEC),
        ),
        "data": data,
    }


def pod_security_context() -> Manifest:
    """Pod-level hardening: a numeric non-root user and the runtime's default seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": c.WORKER_UID,
        "runAsGroup": c.WORKER_UID,
        "fsGroup": c.WORKER_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Manifest:
    """Container-level hardening: read-only root, no privilege escalation, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def s3_env(s3: S3Spec | None) -> list[Manifest]:
    """S3 settings as environment variables; credentials by reference to the Secret only."""
    if s3 is None:
        return []
    env: list[Manifest] = []
    if s3.endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": s3.endpoint_url})
    if s3.region:
        env.append({"name": "AWS_REGION", "value": s3.region})
    ref = s3.credentials_secret_ref
    if ref is not None:
        for var, key in (
            ("AWS_ACCESS_KEY_ID", ref.access_key_id_key),
            ("AWS_SECRET_ACCESS_KEY", ref.secret_access_key_key),
        ):
            env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key}}})
    return env


def template_env(template: PodTemplate | None) -> list[Manifest]:
    """The user's extra environment variables; Secret values by reference, never copied."""
    if template is None or not template.env:
        return []
    return [_env_var(var) for var in template.env]


def _env_var(var: EnvVar) -> Manifest:
    if var.secret_key_ref is not None:
        ref = var.secret_key_ref
        return {"name": var.name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    return {"name": var.name, "value": var.value or ""}


def _image(template: PodTemplate | None, cfg: OperatorConfig) -> tuple[str, str]:
    image = (template.image if template else None) or cfg.worker.image
    policy = (template.image_pull_policy if template else None) or cfg.worker.image_pull_policy
    return image, policy


def _volumes(owner: str) -> list[Manifest]:
    return [
        {"name": "spec", "configMap": {"name": c.spec_configmap_name(owner)}},
        {"name": "tmp", "emptyDir": {}},
    ]


def _mounts(with_spec: bool = True) -> list[Manifest]:
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": c.TMP_DIR}]
    if with_spec:
        mounts.insert(0, {"name": "spec", "mountPath": c.SPEC_DIR, "readOnly": True})
    return mounts


def worker_container(
    name: str,
    args: list[str],
    env: list[Manifest],
    template: PodTemplate | None,
    cfg: OperatorConfig,
    with_spec: bool = True,
) -> Manifest:
    """One hardened worker container running `gymops <args>`."""
    image, policy = _image(template, cfg)
    container: Manifest = {
        "name": name,
        "image": image,
        "imagePullPolicy": policy,
        "command": ["gymops"],
        "args": args,
        "env": env,
        "volumeMounts": _mounts(with_spec),
        "securityContext": container_security_context(),
        # The worker writes why it stopped; a crash before it could (OOM, an import error)
        # leaves the last lines of its log there instead.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if template is not None and template.resources is not None:
        container["resources"] = template.resources.model_dump(exclude_none=True)
    return container


def pod_spec(
    containers: list[Manifest], template: PodTemplate | None, volumes: list[Manifest]
) -> Manifest:
    """A pod spec with the template's scheduling settings and the hardened security context."""
    spec: Manifest = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(),
        "containers": containers,
        "volumes": volumes,
        "automountServiceAccountToken": False,
    }
    if template is None:
        return spec
    if template.node_selector:
        spec["nodeSelector"] = dict(template.node_selector)
    if template.tolerations:
        spec["tolerations"] = [t.wire() for t in template.tolerations]
    if template.service_account_name:
        spec["serviceAccountName"] = template.service_account_name
    if template.priority_class_name:
        spec["priorityClassName"] = template.priority_class_name
    if template.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in template.image_pull_secrets]
    return spec


def pod_metadata(labels: dict[str, str], template: PodTemplate | None) -> Manifest:
    """Pod labels (ours win over the template's) and the template's annotations."""
    meta: Manifest = {"labels": {**((template.labels or {}) if template else {}), **labels}}
    if template is not None and template.annotations:
        meta["annotations"] = dict(template.annotations)
    return meta


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
        volumes = _volumes(name)
    else:
        assert verifier.image is not None
        container = {
            "name": c.CONTAINER_VERIFIER,
            "image": verifier.image,
            "env": template_env(template),
            "volumeMounts": _mounts(with_spec=False),
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
        "metadata": _meta(c.verifier_name(name), job.metadata.namespace, labels),
        "spec": {
            "replicas": verifier.replicas,
            "selector": {"matchLabels": _selector(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER)},
            "template": {"metadata": pod_metadata(labels, template), "spec": spec},
        },
    }


def _selector(kind_label: str, owner: str, component: str) -> dict[str, str]:
    return {kind_label: owner, c.LABEL_COMPONENT: component}


def build_verifier_service(job: RolloutJob, cfg: OperatorConfig) -> Manifest:
    """The ClusterIP Service in front of the verifier Deployment."""
    name = job.metadata.name
    port = verifier_port(job, cfg)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            c.verifier_name(name),
            job.metadata.namespace,
            labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER),
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_VERIFIER),
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
        "metadata": _meta(c.generator_job_name(name), job.metadata.namespace, {**queue, **labels}),
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.parallelism,
            "parallelism": spec.parallelism,
            "backoffLimitPerIndex": spec.backoff_limit_per_index,
            "podFailurePolicy": pod_failure_policy(),
            "suspend": spec.suspend or kueue.queued(job.metadata.labels),
            "template": {
                "metadata": pod_metadata(labels, spec.template),
                "spec": pod_spec([container], spec.template, _volumes(name)),
            },
        },
    }
    if spec.job_managed_by:
        manifest["spec"]["managedBy"] = spec.job_managed_by
    return manifest


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
        "metadata": _meta(
            c.builder_job_name(name), dataset.metadata.namespace, {**queue, **labels}
        ),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": cfg.worker.builder_backoff_limit,
            "suspend": kueue.queued(dataset.metadata.labels),
            "template": {
                "metadata": pod_metadata(labels, spec.template),
                "spec": pod_spec([container], spec.template, _volumes(name)),
            },
        },
    }


def _server_args(job: RolloutJob) -> list[str]:
    """The server's arguments: the user's, else vLLM's (`vllm serve` is the image's entrypoint)."""
    server = job.spec.policy.server
    assert server is not None
    if server.args is not None:
        return list(server.args)
    name = job.spec.policy.model_name() or server.model
    return ["--model", server.model, "--port", str(server.port), "--served-model-name", name]


def _server_volumes(job: RolloutJob) -> tuple[list[Manifest], list[Manifest]]:
    """(volumes, mounts): a writable /tmp (the root file system is read-only) and the user's."""
    server = job.spec.policy.server
    assert server is not None
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": c.TMP_DIR}]
    for volume in server.volumes or []:
        if volume.claim_name is not None:
            source = {"persistentVolumeClaim": {"claimName": volume.claim_name}}
        else:
            medium = {"medium": "Memory"} if volume.empty_dir == "Memory" else {}
            source = {"emptyDir": medium}
        volumes.append({"name": volume.name, **source})
        mounts.append(
            {
                "name": volume.name,
                "mountPath": volume.mount_path,
                "readOnly": bool(volume.read_only),
            }
        )
    return volumes, mounts


def _server_env(job: RolloutJob) -> list[Manifest]:
    """The user's variables (Secrets by reference); HOME on /tmp unless the user sets it."""
    server = job.spec.policy.server
    assert server is not None
    env = [_env_var(var) for var in server.env or []]
    if not any(var["name"] == "HOME" for var in env):
        env.append({"name": "HOME", "value": c.TMP_DIR})
    return env


def server_container(job: RolloutJob) -> Manifest:
    """The hardened model server container, ready when the OpenAI endpoint answers."""
    server = job.spec.policy.server
    assert server is not None
    _, mounts = _server_volumes(job)
    container: Manifest = {
        "name": c.CONTAINER_SERVER,
        "image": server.image,
        "args": _server_args(job),
        "env": _server_env(job),
        "ports": [{"name": "http", "containerPort": server.port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": server.readiness_path, "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if server.command is not None:
        container["command"] = list(server.command)
    if server.image_pull_policy is not None:
        container["imagePullPolicy"] = server.image_pull_policy
    if server.resources is not None:
        container["resources"] = server.resources.model_dump(exclude_none=True)
    return container


def build_server_deployment(job: RolloutJob) -> Manifest:
    """The model server Deployment (policy.server); it carries the job's Kueue labels, so a
    Kueue with the Deployment integration admits it, and one without ignores them."""
    server = job.spec.policy.server
    assert server is not None
    name = job.metadata.name
    labels = labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER)
    volumes, _ = _server_volumes(job)
    spec = pod_spec([server_container(job)], None, volumes)
    spec["restartPolicy"] = "Always"
    if server.node_selector:
        spec["nodeSelector"] = dict(server.node_selector)
    if server.tolerations:
        spec["tolerations"] = [t.wire() for t in server.tolerations]
    if server.priority_class_name:
        spec["priorityClassName"] = server.priority_class_name
    queue = kueue.labels(job.metadata.labels)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(c.server_name(name), job.metadata.namespace, {**queue, **labels}),
        "spec": {
            "replicas": server.replicas,
            "selector": {"matchLabels": _selector(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER)},
            "template": {"metadata": {"labels": {**queue, **labels}}, "spec": spec},
        },
    }


def build_server_service(job: RolloutJob) -> Manifest:
    """The ClusterIP Service the generators call the model server through."""
    server = job.spec.policy.server
    assert server is not None
    name = job.metadata.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            c.server_name(name),
            job.metadata.namespace,
            labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER),
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER),
            "ports": [
                {"name": "http", "port": server.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }

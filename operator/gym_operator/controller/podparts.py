"""Pod parts every child shares: labels, hardened security contexts, env, containers, pod specs.

Pure functions of the parsed spec and the operator config; no I/O.
"""

from __future__ import annotations

from typing import Any

from gym_operator.api.common import EnvVar, PodTemplate, S3Spec
from gym_operator.controller import constants as c
from gym_operator.controller.config import OperatorConfig

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


def object_meta(name: str, namespace: str | None, labels: dict[str, str]) -> Manifest:
    meta: Manifest = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return meta


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
    return [env_var(var) for var in template.env]


def env_var(var: EnvVar) -> Manifest:
    if var.secret_key_ref is not None:
        ref = var.secret_key_ref
        return {"name": var.name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    return {"name": var.name, "value": var.value or ""}


def worker_image(template: PodTemplate | None, cfg: OperatorConfig) -> tuple[str, str]:
    image = (template.image if template else None) or cfg.worker.image
    policy = (template.image_pull_policy if template else None) or cfg.worker.image_pull_policy
    return image, policy


def worker_volumes(owner: str) -> list[Manifest]:
    return [
        {"name": "spec", "configMap": {"name": c.spec_configmap_name(owner)}},
        {"name": "tmp", "emptyDir": {}},
    ]


def worker_mounts(with_spec: bool = True) -> list[Manifest]:
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
    image, policy = worker_image(template, cfg)
    container: Manifest = {
        "name": name,
        "image": image,
        "imagePullPolicy": policy,
        "command": ["gymops"],
        "args": args,
        "env": env,
        "volumeMounts": worker_mounts(with_spec),
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


def selector_for(kind_label: str, owner: str, component: str) -> dict[str, str]:
    return {kind_label: owner, c.LABEL_COMPONENT: component}

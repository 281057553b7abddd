"""Pure builders of the managed model server (policy.server): its Deployment and Service. No I/O."""

from __future__ import annotations

from gym_operator.api import RolloutJob
from gym_operator.controller import constants as c
from gym_operator.controller import kueue
from gym_operator.controller.podparts import (
    Manifest,
    container_security_context,
    env_var,
    labels_for,
    object_meta,
    pod_spec,
    selector_for,
)


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
    env = [env_var(var) for var in server.env or []]
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
        "metadata": object_meta(c.server_name(name), job.metadata.namespace, {**queue, **labels}),
        "spec": {
            "replicas": server.replicas,
            "selector": {"matchLabels": selector_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER)},
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
        "metadata": object_meta(
            c.server_name(name),
            job.metadata.namespace,
            labels_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER),
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_for(c.LABEL_ROLLOUTJOB, name, c.COMPONENT_SERVER),
            "ports": [
                {"name": "http", "port": server.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }

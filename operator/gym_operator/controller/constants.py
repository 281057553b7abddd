"""Label keys, annotation names, child name templates, condition types and reasons, in one place."""

from __future__ import annotations

import hashlib

from gym_operator.api import API_GROUP

ANNOTATION_PREFIX = f"{API_GROUP}/"
"""Prefix of every annotation and label key the operator writes (kopf's state included)."""

ANNOTATION_APPLIED_SPEC = f"{ANNOTATION_PREFIX}applied-spec"
"""The spec the children were built from (JSON); later changes are compared against it."""

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_ROLLOUTJOB = f"{ANNOTATION_PREFIX}rolloutjob"
LABEL_DATASET = f"{ANNOTATION_PREFIX}dataset"
MANAGED_BY = "gym-operator"
APP_NAME = "gym-operator"

COMPONENT_GENERATOR = "generator"
COMPONENT_VERIFIER = "verifier"
COMPONENT_SPEC = "spec"
COMPONENT_BUILDER = "dataset-builder"
COMPONENT_SERVER = "model-server"

CONTAINER_GENERATOR = "generator"
CONTAINER_VERIFIER = "verifier"
CONTAINER_BUILDER = "builder"
CONTAINER_SERVER = "server"

KUEUE_PREFIX = "kueue.x-k8s.io/"
"""Kueue's label keys (queue-name, priority-class): copied from a RolloutJob or Dataset to the
Jobs (and the model server Deployment) it makes."""
KUEUE_QUEUE_LABEL = f"{KUEUE_PREFIX}queue-name"
"""A resource with this label has its Jobs admitted by Kueue: created suspended, and never
un-suspended by the operator."""

SPEC_DIR = "/etc/gymops"
SPEC_FILE = "spec.json"
SPEC_PATH = f"{SPEC_DIR}/{SPEC_FILE}"
VERIFIER_CONFIG_FILE = "verifier.json"
TMP_DIR = "/tmp"
WORKER_UID = 65532
"""Numeric non-root user of worker pods (the distroless `nonroot` user)."""

MAX_NAME_LENGTH = 63
"""Job names become pod labels (job-name), so children are kept to a DNS label's length."""

# Condition types (metav1.Condition `type`): each names one aspect of the resource, True or False;
# the phase (api.Phase) says where it is, the conditions say what holds.
CONDITION_READY = "Ready"
"""True while the resource's workers run (phase Running)."""
CONDITION_PROGRESSING = "Progressing"
"""True while the resource moves towards its end (phase Pending or Running)."""
CONDITION_COMPLETE = "Complete"
"""True once the work succeeded (phase Succeeded)."""
CONDITION_FAILED = "Failed"
"""True once the work failed for good (phase Failed)."""
CONDITION_SUSPENDED = "Suspended"
"""True while the user suspended the resource (phase Suspended)."""
ASPECT_CONDITIONS: tuple[str, ...] = (
    CONDITION_READY,
    CONDITION_PROGRESSING,
    CONDITION_COMPLETE,
    CONDITION_FAILED,
    CONDITION_SUSPENDED,
)
"""The conditions every resource carries, all five always present."""

CONDITION_SPEC_ACCEPTED = "SpecAccepted"
"""False while a change to a running resource's spec is refused."""
CONDITION_PROGRESS_READABLE = "ProgressReadable"
"""False while the shard manifests under spec.output.uri cannot be read (message says why)."""

# Reasons (CamelCase, machine-readable).
REASON_ACCEPTED = "Accepted"
REASON_CREATED = "ChildrenCreated"
REASON_RESTORED = "ChildRestored"
REASON_INVALID_SPEC = "InvalidSpec"
REASON_WAITING = "WaitingForSources"
REASON_SOURCE_FAILED = "SourceFailed"
REASON_SOURCE_MISSING = "SourceNotFound"
REASON_RUNNING = "PodsRunning"
REASON_PODS_PENDING = "PodsPending"
REASON_SUSPENDED = "Suspended"
REASON_COMPLETE = "JobComplete"
REASON_JOB_FAILED = "JobFailed"
REASON_TOO_MANY_FAILURES = "TooManyFailedRollouts"
REASON_SPEC_CHANGE_REFUSED = "SpecChangeRefused"
REASON_SPEC_CHANGE_APPLIED = "SpecChangeApplied"
REASON_EXPIRED = "TTLExpired"
REASON_PROGRESS_READ = "ProgressRead"
REASON_PROGRESS_UNREADABLE = "ProgressUnreadable"
REASON_FORBIDDEN = "Forbidden"
REASON_WAITING_FOR_ADMISSION = "WaitingForAdmission"
REASON_SERVER_STARTING = "ServerStarting"
REASON_SERVER_NOT_READY = "ServerNotReady"
REASON_SERVER_READY = "ServerReady"
REASON_SERVER_TIMEOUT = "ServerStartupTimeout"
REASON_SERVER_DELETED = "ServerDeleted"
REASON_ENDPOINT_PENDING = "EndpointNotReady"

CONDITION_SERVER_READY = "ServerReady"
"""True while a managed model server (spec.policy.server) has a ready replica."""

POD_PROBLEM_REASONS: frozenset[str] = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "Unschedulable",
    }
)
"""Reasons of a stuck pod that are lifted into the resource's status.message and Events."""

MUTABLE_SPEC_FIELDS: frozenset[str] = frozenset({"suspend", "ttlSecondsAfterFinished"})
"""Top-level spec fields that may change while a RolloutJob or Dataset runs."""


def child_name(owner: str, suffix: str) -> str:
    """`<owner>-<suffix>`, shortened with a stable hash when longer than a DNS label."""
    name = f"{owner}-{suffix}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
    keep = MAX_NAME_LENGTH - len(suffix) - len(digest) - 2
    return f"{owner[:keep].rstrip('-.')}-{digest}-{suffix}"


def generator_job_name(job: str) -> str:
    """Name of the Indexed generator Job of a RolloutJob."""
    return child_name(job, "gen")


def verifier_name(job: str) -> str:
    """Name of the verifier Deployment and Service of a RolloutJob."""
    return child_name(job, "verifier")


def server_name(job: str) -> str:
    """Name of the model server Deployment and Service of a RolloutJob (policy.server)."""
    return child_name(job, "server")


def spec_configmap_name(owner: str) -> str:
    """Name of the ConfigMap holding the spec the workers read."""
    return child_name(owner, "spec")


def builder_job_name(dataset: str) -> str:
    """Name of the builder Job of a Dataset."""
    return child_name(dataset, "build")

"""Helpers of the e2e tests on the real control plane: the test's namespace, the operator process.

Import as `clusterkit` (pytest puts this folder on sys.path). Tests never write Job or pod status:
the Job controller and the node agent (tests/cluster) do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cluster.fixtures import KubeCluster
from kubernetes import client

from gym_operator.controller import rbac
from gym_operator.testing.loopback import free_port
from gym_operator.testing.stub_model import StubModel

ROOT = Path(__file__).resolve().parents[2]
GYMOPS = str(Path(sys.executable).with_name("gymops"))
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
GROUP, VERSION = "gymops.dev", "v1alpha1"
PLURALS = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}
JOB_INDEX = "batch.kubernetes.io/job-completion-index"
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """Poll `check` every 0.2 s until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except client.ApiException as exc:
            last = exc
            if exc.status != 404:
                raise
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Cluster:
    """One namespace of the session's control plane, through the official client (as admin)."""

    def __init__(self, kube: KubeCluster, namespace: str) -> None:
        self.kube = kube
        self.kubeconfig = kube.kubeconfig
        self.namespace = namespace
        self.api_client = kube.api
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)

    # ------------------------------------------------------------- resources

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a RolloutJob or Dataset with the official client."""
        plural = PLURALS[body["kind"]]
        return self.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, self.namespace, plural, body
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """A RolloutJob or Dataset."""
        return self.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, self.namespace, PLURALS[kind], name
        )

    def patch_spec(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the spec."""
        return self.custom.patch_namespaced_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, self.namespace, PLURALS[kind], name, {"spec": spec}
        )

    def delete(self, kind: str, name: str) -> None:
        """Delete a RolloutJob or Dataset (foreground: children first, as kubectl --cascade)."""
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURALS[kind], name
        )

    def exists(self, kind: str, name: str) -> bool:
        """Whether the resource exists."""
        try:
            self.get(kind, name)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def status(self, kind: str, name: str) -> dict[str, Any]:
        """The resource's status ({} when none yet)."""
        return dict(self.get(kind, name).get("status") or {})

    def wait_phase(self, kind: str, name: str, phase: str, timeout: float = 90.0) -> dict[str, Any]:
        """Wait until status.phase is `phase`; returns the status."""

        def check() -> dict[str, Any] | None:
            status = self.status(kind, name)
            return status if status.get("phase") == phase else None

        return wait_for(check, f"{kind} {name} phase {phase}", timeout)

    def job(self, name: str) -> dict[str, Any] | None:
        """A batch/v1 Job as a dict, or None."""
        return self._raw("GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")

    def raw_list(self, path: str) -> list[dict[str, Any]]:
        """Items of a collection path, e.g. `/api/v1/namespaces/ns/configmaps`."""
        found = self._raw("GET", path)
        return list((found or {}).get("items") or [])

    def _raw(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/merge-patch+json"
        request = self.api_client.param_serialize(
            method=method, resource_path=path, header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self.api_client.call_api(*request)
        data = response.read()
        if response.status == 404:
            return None
        if response.status >= 400:
            raise client.ApiException(status=response.status, reason=data.decode())
        return json.loads(data) if data else None

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events about an object, oldest first."""
        items = self.raw_list(f"/api/v1/namespaces/{self.namespace}/events")
        return [e for e in items if e.get("involvedObject", {}).get("name") == name]

    def event_reasons(self, name: str) -> list[str]:
        """Reasons of the events about an object."""
        return [str(e.get("reason")) for e in self.events(name)]

    def children(self, owner_uid: str) -> dict[str, list[dict[str, Any]]]:
        """Objects owned by `owner_uid`, by kind."""
        paths = {
            "ConfigMap": f"/api/v1/namespaces/{self.namespace}/configmaps",
            "Service": f"/api/v1/namespaces/{self.namespace}/services",
            "Deployment": f"/apis/apps/v1/namespaces/{self.namespace}/deployments",
            "Job": f"/apis/batch/v1/namespaces/{self.namespace}/jobs",
            "Pod": f"/api/v1/namespaces/{self.namespace}/pods",
        }
        out: dict[str, list[dict[str, Any]]] = {}
        for kind, path in paths.items():
            for item in self.raw_list(path):
                refs = item["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs):
                    out.setdefault(kind, []).append(item)
        return out

    def pods_of(self, job_name: str) -> list[dict[str, Any]]:
        """Pods of a Job (label `job-name`, set by the Job controller)."""
        return self.raw_list(
            f"/api/v1/namespaces/{self.namespace}/pods?labelSelector=job-name%3D{job_name}"
        )

    def creations(self, resource: str, name: str) -> int:
        """How many times the API server created `resource`/`name` in this namespace (audit)."""
        return sum(
            1
            for e in self.kube.plane.audit()
            if e.get("verb") == "create"
            and (e.get("objectRef") or {}).get("resource") == resource
            and (e.get("objectRef") or {}).get("namespace") == self.namespace
            and (e.get("objectRef") or {}).get("name") == name
            and (e.get("responseStatus") or {}).get("code") == 201
        )

    def history(self, resource: str, name: str) -> list[tuple[str, str, int]]:
        """(verb, user, response code) of every write to `resource`/`name` (audit), oldest first."""
        return [
            (e.get("verb"), (e.get("user") or {}).get("username"),
             (e.get("responseStatus") or {}).get("code"))
            for e in self.kube.plane.audit()
            if (e.get("objectRef") or {}).get("resource") == resource
            and (e.get("objectRef") or {}).get("namespace") == self.namespace
            and (e.get("objectRef") or {}).get("name") == name
        ]  # fmt: skip

    def delete_resources(self, timeout: float = 60) -> None:
        """Delete every RolloutJob and Dataset of the namespace and wait until they are gone
        (while an operator still runs to release its finalizers)."""
        for plural in PLURALS.values():
            self.custom.delete_collection_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural
            )
        wait_for(
            lambda: (
                not any(
                    self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, p)[
                        "items"
                    ]
                    for p in PLURALS.values()
                )
            ),
            "the test's resources to be deleted",
            timeout,
        )

    def secret(self, name: str, data: dict[str, str]) -> None:
        """Create a Secret from plain strings."""
        self.core.create_namespaced_secret(
            self.namespace, {"metadata": {"name": name}, "stringData": data}
        )

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """kubectl as the admin, in this namespace."""
        base = [KUBECTL, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace]
        return subprocess.run(
            [*base, *args], input=stdin, capture_output=True, text=True, timeout=120
        )


def operator_identity(cluster: Cluster, path: Path) -> Path:
    """A ServiceAccount with exactly the operator's RBAC rules (controller/rbac.py) in the
    test's namespace, and a kubeconfig holding its token: the operator runs under RBAC."""
    ns, name = cluster.namespace, "gym-operator"
    rbac_api = client.RbacAuthorizationV1Api(cluster.api_client)
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    rules = rbac.rules()
    cluster_scoped = {"customresourcedefinitions", "namespaces"}
    local = [r for r in rules if r["resources"][0] not in cluster_scoped]
    wide = [r for r in rules if r["resources"][0] in cluster_scoped]
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
    rbac_api.create_namespaced_role(ns, {"metadata": {"name": name}, "rules": local})
    rbac_api.create_namespaced_role_binding(ns, {
        "metadata": {"name": name}, "subjects": subject,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
    })  # fmt: skip
    wide_name = f"gym-operator-{ns}"
    rbac_api.create_cluster_role({"metadata": {"name": wide_name}, "rules": wide})
    rbac_api.create_cluster_role_binding({
        "metadata": {"name": wide_name}, "subjects": subject,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": wide_name},
    })  # fmt: skip
    return token_kubeconfig(cluster, name, path)


def token_kubeconfig(cluster: Cluster, account: str, path: Path) -> Path:
    """A kubeconfig with a fresh token (TokenRequest) of a ServiceAccount in the namespace."""
    request = {"spec": {"expirationSeconds": 7200}}
    token = cluster.core.create_namespaced_service_account_token(
        account, cluster.namespace, request
    ).status.token
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    body = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {
                "name": account,
                "context": {
                    "cluster": admin["clusters"][0]["name"],
                    "user": account,
                    "namespace": cluster.namespace,
                },
            }
        ],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(body))
    return path


class Operator:
    """`gymops operator` as a subprocess, namespaced to one namespace."""

    def __init__(
        self, kubeconfig: Path, namespace: str, log_path: Path, env: dict[str, str]
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.env = env
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        """Start and wait until the liveness endpoint answers."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "GYMOPS_RECONCILE_SECONDS": "0.5",
            "GYMOPS_PROGRESS_SECONDS": "0.5",
            **self.env,
        }
        args = [
            GYMOPS, "operator", "--namespace", self.namespace,
            "--metrics-port", str(self.metrics_port),
            "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, "the operator's liveness endpoint", timeout=60)
        return self

    def healthy(self) -> bool:
        """Whether /healthz answers 200 (and the process lives)."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited {self.proc.returncode}:\n{self.log()}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=1
            ) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        """The operator's /metrics text."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 10 s)."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crashed pod would die."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        """The operator's output so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def rolloutjob(name: str, **spec: Any) -> dict[str, Any]:
    """A RolloutJob body with a math verifier and 2 shards; `spec` overrides top-level fields."""
    body_spec: dict[str, Any] = {
        "input": {"uri": "s3://bucket/tasks.jsonl", "limit": 10},
        "policy": {"baseURL": "http://vllm:8000/v1", "model": "qwen3-8b"},
        "sampling": {"numRepeats": 2},
        "verifier": {"builtin": "math"},
        "output": {"uri": f"s3://bucket/rollouts/{name}/"},
        "parallelism": 2,
    }
    body_spec.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RolloutJob",
        "metadata": {"name": name},
        "spec": body_spec,
    }


def math_task(i: int) -> dict[str, Any]:
    """The stub answers i + (i + 1), and one more for odd seeds (so half the repeats fail)."""
    return {
        "responses_create_params": {
            "input": [{"role": "user", "content": f"What is {i} + {i + 1}?"}]
        },
        "expected_answer": str(2 * i + 1),
    }


class World:
    """What real pods need from the test: tasks in moto S3, the S3 Secret, the stub model."""

    def __init__(
        self, cluster: Cluster, bucket: str, s3_url: str, model_url: str, stub: StubModel
    ) -> None:
        self.cluster = cluster
        self.stub = stub
        self.bucket = bucket
        self.s3_url = s3_url
        self.model_url = model_url
        cluster.secret("s3", {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})

    def put_tasks(self, key: str, count: int) -> str:
        """`count` math tasks as JSONL at s3://bucket/key; returns the URI."""
        import boto3

        rows = "".join(json.dumps(math_task(i)) + "\n" for i in range(count))
        s3 = boto3.client("s3", endpoint_url=self.s3_url, region_name="us-east-1")
        s3.put_object(Bucket=self.bucket, Key=key, Body=rows.encode())
        return f"s3://{self.bucket}/{key}"

    def s3(self) -> dict[str, Any]:
        """spec.s3 of resources that run in this world."""
        return {
            "endpointURL": self.s3_url,
            "region": "us-east-1",
            "credentialsSecretRef": {"name": "s3"},
        }

    def rolloutjob(self, name: str, tasks: int = 4, **spec: Any) -> dict[str, Any]:
        """A RolloutJob whose pods really run against the stub model and moto S3."""
        fields: dict[str, Any] = {
            "input": {"uri": self.put_tasks(f"tasks/{name}.jsonl", tasks)},
            "policy": {"baseURL": self.model_url, "model": "stub"},
            "sampling": {"numRepeats": 2, "concurrency": 4},
            "output": {"uri": f"s3://{self.bucket}/rollouts/{name}/", "partRows": 2},
            "s3": self.s3(),
            "parallelism": 2,
        }
        fields.update(spec)
        return rolloutjob(name, **fields)


def _paths(node: Any, prefix: str) -> tuple[set[str], set[str]]:
    """(paths set to a value, paths set to null) of a merge-patch body; lists are leaves."""
    if not isinstance(node, dict):
        return ({prefix}, set()) if node is not None else (set(), {prefix})
    kept: set[str] = set()
    dropped: set[str] = set()
    for key, value in node.items():
        more_kept, more_dropped = _paths(value, f"{prefix}.{key}")
        kept |= more_kept
        dropped |= more_dropped
    return kept, dropped


def assert_status_survived(cluster: Cluster, kind: str, name: str) -> None:
    """Every status field the operator sent (audit log request bodies) is in the object read
    back, unless a later write removed it: the server pruned nothing the operator meant to keep."""
    written: set[str] = set()
    for event in cluster.kube.plane.audit():
        ref = event.get("objectRef") or {}
        if (ref.get("resource"), ref.get("namespace"), ref.get("name")) != (
            PLURALS[kind], cluster.namespace, name,
        ) or event.get("verb") != "patch":  # fmt: skip
            continue
        request = event.get("requestObject")
        body = request.get("status") if isinstance(request, dict) else None
        if isinstance(body, dict):
            kept, dropped = _paths(body, "status")
            written = (written - dropped) | kept
    assert written, f"no status write of {kind} {name} in the audit log"
    stored, _ = _paths(cluster.get(kind, name).get("status") or {}, "status")
    missing = {path for path in written if path not in stored}
    assert not missing, f"pruned by the server: {sorted(missing)}"

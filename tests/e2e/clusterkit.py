"""Helpers of the e2e tests: a test cluster (emulator + official client), the kubelet, the operator.

Import as `clusterkit` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from emulator import EmulatorThread
from kubernetes import client, config

from gym_operator.testing.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
GYMOPS = str(Path(sys.executable).with_name("gymops"))
GROUP, VERSION = "gymops.dev", "v1alpha1"
PLURALS = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}
JOB_INDEX = "batch.kubernetes.io/job-completion-index"
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll `check` every 0.1 s until it returns something truthy; fail naming `what`."""
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
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


class Cluster:
    """One emulator, one namespace, the official client, and the kubelet's part."""

    def __init__(self, emulator: EmulatorThread, kubeconfig: Path, namespace: str) -> None:
        self.emulator = emulator
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.api_client = config.new_client_from_config(str(kubeconfig))
        self.custom = client.CustomObjectsApi(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.core.create_namespace({"metadata": {"name": namespace}})

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
        """Delete a RolloutJob or Dataset."""
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

    def wait_phase(self, kind: str, name: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        """Wait until status.phase is `phase`; returns the status."""

        def check() -> dict[str, Any] | None:
            status = self.status(kind, name)
            return status if status.get("phase") == phase else None

        return wait_for(check, f"{kind} {name} phase {phase}", timeout)

    def job(self, name: str) -> dict[str, Any] | None:
        """A batch/v1 Job as a dict, or None."""
        return self._raw("GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")

    def raw_list(self, path: str) -> list[dict[str, Any]]:
        """Items of a collection path under this namespace, e.g. `api/v1/.../configmaps`."""
        found = self._raw("GET", path)
        return list((found or {}).get("items") or [])

    def _raw(self, method: str, path: str, body: Any = None, patch: bool = False) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            ctype = "application/merge-patch+json" if patch else "application/json"
            headers["Content-Type"] = ctype
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
        import json

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

    # ------------------------------------------------------------- the kubelet's part

    def start_pods(self, job_name: str, indexes: list[int] | None = None) -> list[str]:
        """Create the Job's pods (as the Job controller would) and mark them Running."""
        job = wait_for(lambda: self.job(job_name), f"Job {job_name}")
        completions = int(job["spec"].get("completions") or 1)
        names = []
        for index in indexes if indexes is not None else range(completions):
            names.append(self.run_pod(job, index))
        self.set_job_status(job_name, {"active": len(names), "ready": len(names)})
        return names

    def run_pod(self, job: dict[str, Any], index: int, phase: str = "Running") -> str:
        """One pod of the Job for shard `index`, in `phase`."""
        template = copy.deepcopy(job["spec"]["template"])
        name = f"{job['metadata']['name']}-{index}-{uuid.uuid4().hex[:5]}"
        labels = dict(template["metadata"].get("labels") or {})
        labels["job-name"] = job["metadata"]["name"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "labels": labels,
                "annotations": {JOB_INDEX: str(index)},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job["metadata"]["name"],
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
        }
        self.core.create_namespaced_pod(self.namespace, pod)
        self.set_pod_phase(name, phase)
        return name

    def set_pod_phase(
        self, name: str, phase: str, waiting: str | None = None, exit: tuple[int, str] = (1, "")
    ) -> None:
        """Set a pod's phase (and a waiting reason of its container; a failed one's exit code and
        termination message, as the kubelet reports them)."""
        state: dict[str, Any] = (
            {"waiting": {"reason": waiting, "message": "simulated"}} if waiting else {"running": {}}
        )
        if phase == "Succeeded":
            state = {"terminated": {"exitCode": 0}}
        elif phase == "Failed":
            code, message = exit
            state = {"terminated": {"exitCode": code, **({"message": message} if message else {})}}
        status = {
            "phase": phase,
            "containerStatuses": [{"name": "main", "ready": phase == "Running", "state": state}],
        }
        self._raw(
            "PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{name}/status",
            {"status": status}, patch=True,
        )  # fmt: skip

    def set_job_status(self, name: str, status: dict[str, Any]) -> None:
        """Merge-patch a Job's status."""
        self._raw(
            "PATCH", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}/status",
            {"status": status}, patch=True,
        )  # fmt: skip

    def complete_job(self, name: str) -> None:
        """Every pod Succeeded, the Job Complete."""
        job = self.job(name)
        assert job is not None
        for pod in self.pods_of(name):
            if pod["status"].get("phase") == "Running":
                self.set_pod_phase(pod["metadata"]["name"], "Succeeded")
        completions = int(job["spec"].get("completions") or 1)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.set_job_status(
            name,
            {
                "active": 0,
                "ready": 0,
                "succeeded": completions,
                "completionTime": now,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "lastTransitionTime": now},
                ],
            },
        )

    def fail_job(self, name: str, reason: str, message: str, failed_indexes: str) -> None:
        """The Job Failed (e.g. a shard exhausted backoffLimitPerIndex)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        condition = {
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
        }
        self.set_job_status(
            name,
            {
                "active": 0,
                "failedIndexes": failed_indexes,
                "conditions": [
                    {"type": "FailureTarget", **condition},
                    {"type": "Failed", **condition},
                ],
            },
        )

    def pods_of(self, job_name: str) -> list[dict[str, Any]]:
        """Pods created for a Job."""
        items = self.raw_list(
            f"/api/v1/namespaces/{self.namespace}/pods?labelSelector=job-name%3D{job_name}"
        )
        return items


class Operator:
    """`gymops operator` as a subprocess against the emulator, namespaced to one namespace."""

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
            "GYMOPS_RECONCILE_SECONDS": "0.3",
            "GYMOPS_PROGRESS_SECONDS": "0.3",
            **self.env,
        }
        args = [
            GYMOPS, "operator", "--namespace", self.namespace,
            "--metrics-port", str(self.metrics_port),
            "--liveness", f"http://127.0.0.1:{self.health_port}/healthz",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.healthy, "the operator's liveness endpoint", timeout=30)
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

"""The node agent plays the kubelet faithfully enough for the real controllers to work on: env
and volumes as the pod spec says, Services by DNS name across replicas, restarts, termination."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from cluster.fixtures import KubeCluster

PYTHON = "gymops-test/python:3"
T = Any


@pytest.fixture(autouse=True)
def python_image(kube: KubeCluster) -> None:
    """An image of the tests' own: `python` is the venv's interpreter."""
    kube.agent.images["gymops-test/python"] = {"python": [sys.executable], "": [sys.executable]}


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def pod(name: str, code: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": PYTHON, "command": ["python", "-c", code]}
    container.update(spec.pop("container", {}))
    return {
        "metadata": {"name": name, "labels": spec.pop("labels", {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def finished(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = core.read_namespaced_pod(name, namespace).to_dict()
        return found if found["status"]["phase"] in ("Succeeded", "Failed") else None

    return wait_for(done, f"pod {name} to finish", timeout=90)


def test_env_volumes_and_termination_message_come_from_the_pod_spec(
    kube: KubeCluster, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"k": "sv"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"f": "cv"}})
    code = (
        "import json, os; names = ['PLAIN', 'SECRET', 'CONFIG', 'POD', 'LABEL'];"
        "out = {n: os.environ.get(n) for n in names};"
        "out['file'] = open('/etc/conf/f').read();"
        "open('/dev/termination-log', 'w').write(json.dumps(out)); raise SystemExit(3)"
    )
    env = [
        {"name": "PLAIN", "value": "p"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "CONFIG", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "f"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]
    body = pod(
        "env1",
        code,
        labels={"app": "demo"},
        volumes=[{"name": "conf", "configMap": {"name": "c"}}],
        container={"env": env, "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf"}]},
    )
    core.create_namespaced_pod(namespace, body)
    status = finished(core, namespace, "env1")["status"]
    assert status["phase"] == "Failed"
    terminated = status["container_statuses"][0]["state"]["terminated"]
    assert terminated["exit_code"] == 3
    assert json.loads(terminated["message"]) == {
        "PLAIN": "p", "SECRET": "sv", "CONFIG": "cv", "POD": "env1", "LABEL": "demo", "file": "cv",
    }  # fmt: skip


def test_a_missing_secret_is_a_container_config_error(kube: KubeCluster, namespace: str) -> None:
    core = client.CoreV1Api(kube.api)
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    core.create_namespaced_pod(namespace, pod("cfg1", "pass", container={"env": env}))

    def waiting() -> dict | None:
        found = core.read_namespaced_pod("cfg1", namespace).status.container_statuses or []
        state = found[0].state.waiting if found else None
        return state if state and state.reason == "CreateContainerConfigError" else None

    state = wait_for(waiting, "CreateContainerConfigError")
    assert "absent" in state.message


@pytest.fixture
def under_tmp() -> Iterator[Path]:
    """A directory right under /tmp, where a fresh clone of the project lives in CI."""
    path = Path(tempfile.mkdtemp(prefix="gymops-image-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_pod_whose_tmp_is_an_empty_dir_still_runs_its_image_files_from_under_tmp(
    kube: KubeCluster, namespace: str, under_tmp: Path
) -> None:
    core = client.CoreV1Api(kube.api)
    mine, host_only = f"pod-{uuid.uuid4().hex}", under_tmp.with_name(f"host-{uuid.uuid4().hex}")
    host_only.write_text("the host's /tmp")
    (under_tmp / "entry.py").write_text(
        "import json, os, sys\n"
        "own = '/tmp/' + sys.argv[1]\n"
        "open(own, 'w').write('mine')\n"
        "seen = {'host': os.path.exists(sys.argv[2]), 'own': os.path.exists(own)}\n"
        "open('/dev/termination-log', 'w').write(json.dumps(seen))\n"
    )
    entry = [sys.executable, str(under_tmp / "entry.py")]
    kube.agent.images["gymops-test/under-tmp"] = {"": entry}
    body = pod("tmp1", "", volumes=[{"name": "tmp", "emptyDir": {}}])
    body["spec"]["containers"][0] = {
        "name": "main", "image": "gymops-test/under-tmp", "args": [mine, str(host_only)],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }  # fmt: skip
    try:
        core.create_namespaced_pod(namespace, body)
        status = finished(core, namespace, "tmp1")["status"]
    finally:
        host_only.unlink()
    terminated = status["container_statuses"][0]["state"]["terminated"]
    assert status["phase"] == "Succeeded", terminated.get("message")
    assert json.loads(terminated["message"]) == {"host": False, "own": True}
    assert not (under_tmp.parent / mine).exists()  # what it wrote stayed in its own /tmp


SERVER = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['POD'].encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()\n"
)
CLIENT = (
    "import urllib.request\n"
    "seen = sorted({urllib.request.urlopen('http://echo:80/', timeout=5).read().decode()"
    " for _ in range(12)})\n"
    "open('/dev/termination-log', 'w').write(','.join(seen))\n"
)


def run_echo(kube: KubeCluster, namespace: str, service: dict[str, Any]) -> dict[str, str]:
    """Two replicas of SERVER behind Service `echo` (`service` is its spec without the
    selector), once both are ready endpoints; returns each replica's pod IP -> name."""
    apps, core = client.AppsV1Api(kube.api), client.CoreV1Api(kube.api)
    labels = {"app": "echo"}
    env = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    container = {
        "name": "echo", "image": PYTHON, "command": ["python", "-c", SERVER], "env": env,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    }  # fmt: skip
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "echo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    })  # fmt: skip
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "echo"}, "spec": {"selector": labels, **service},
    })  # fmt: skip

    def both_ready() -> bool:
        found = apps.read_namespaced_deployment("echo", namespace).status
        return (found.ready_replicas or 0) == 2

    wait_for(both_ready, "two ready replicas", timeout=90)
    wait_for(
        lambda: len(
            [e for s in client.DiscoveryV1Api(kube.api).list_namespaced_endpoint_slice(
                namespace, label_selector="kubernetes.io/service-name=echo").items
             for e in s.endpoints or [] if e.conditions.ready]
        ) == 2,
        "both endpoints in the EndpointSlice",
    )  # fmt: skip
    pods = core.list_namespaced_pod(namespace, label_selector="app=echo").items
    return {p.status.pod_ip: p.metadata.name for p in pods}


def test_a_service_reaches_every_ready_replica_by_its_dns_name(
    kube: KubeCluster, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    replicas = run_echo(kube, namespace, {"ports": [{"port": 80, "targetPort": "http"}]})
    core.create_namespaced_pod(namespace, pod("client", CLIENT))
    status = finished(core, namespace, "client")["status"]
    message = status["container_statuses"][0]["state"]["terminated"]["message"]
    assert status["phase"] == "Succeeded", message
    assert set(message.split(",")) == set(replicas.values())


HEADLESS_CLIENT = (
    "import json, socket, sys, urllib.request\n"
    "found = socket.getaddrinfo(sys.argv[1], 8080, type=socket.SOCK_STREAM)\n"
    "ips = sorted({info[4][0] for info in found})\n"
    "seen = {ip: urllib.request.urlopen(f'http://{ip}:8080/', timeout=5).read().decode()"
    " for ip in ips}\n"
    "open('/dev/termination-log', 'w').write(json.dumps(seen))\n"
)


def test_a_headless_service_name_resolves_to_each_ready_replica_and_each_ip_reaches_its_pod(
    kube: KubeCluster, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    headless = {"clusterIP": "None", "ports": [{"port": 8080, "targetPort": "http"}]}
    replicas = run_echo(kube, namespace, headless)
    name = f"echo.{namespace}.svc.cluster.local"
    body = pod("client", "")
    body["spec"]["containers"][0].update(
        command=["python", "-c", HEADLESS_CLIENT, name],
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    core.create_namespaced_pod(namespace, body)
    status = finished(core, namespace, "client")["status"]
    message = status["container_statuses"][0]["state"]["terminated"].get("message")
    assert status["phase"] == "Succeeded", message
    assert json.loads(message) == replicas  # every replica's IP, each answered by that replica


def test_a_crashing_container_is_restarted_and_counted(kube: KubeCluster, namespace: str) -> None:
    apps, core = client.AppsV1Api(kube.api), client.CoreV1Api(kube.api)
    labels = {"app": "crash"}
    container = {
        "name": "main",
        "image": PYTHON,
        "command": ["python", "-c", "raise SystemExit(7)"],
    }
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "crash"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}},
    })  # fmt: skip

    def restarted() -> Any:
        for item in core.list_namespaced_pod(namespace, label_selector="app=crash").items:
            for c in item.status.container_statuses or []:
                if c.restart_count >= 2:
                    return c
        return None

    found = wait_for(restarted, "two restarts", timeout=90)
    assert found.last_state.terminated.exit_code == 7


def test_a_deleted_pod_gets_sigterm_then_sigkill_after_its_grace_period(
    kube: KubeCluster, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, lambda *a: None); time.sleep(600)"
    )
    core.create_namespaced_pod(
        namespace, pod("stubborn", stubborn, terminationGracePeriodSeconds=3)
    )
    wait_for(
        lambda: core.read_namespaced_pod("stubborn", namespace).status.phase == "Running",
        "the pod to run",
    )
    started = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("stubborn", namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, "the pod to be removed", timeout=60)
    assert time.monotonic() - started >= 3, "killed before its grace period"

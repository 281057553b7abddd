"""One pod's sandbox, run by the node agent inside fresh network and mount namespaces.

`unshare --net --mount python -m cluster.podshim POD.json`: brings up loopback with the pod's IP
and the Service IPs, bind-mounts the volumes, /etc/hosts and the termination-message files (the
image's files stay visible under them), bridges Service and test-server traffic through Unix
sockets (cluster.netbridge), runs the containers as local processes with restarts per
restartPolicy, probes readiness, and keeps `status.json` current for the agent. SIGTERM is passed
to the containers; the agent SIGKILLs after the grace period.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from cluster.netbridge import Listener, tcp, unix

MESSAGE_LIMIT = 4096


def now() -> str:
    """An RFC 3339 timestamp."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


def network(pod: dict[str, Any]) -> list[Listener]:
    """Loopback up with the pod's and the Services' IPs; the bridges out of and into the pod."""
    sh("ip", "link", "set", "lo", "up")
    addresses = {pod["podIP"], *(ip for ip, _, _ in pod["outbound"] if ip != "127.0.0.1")}
    for address in sorted(addresses):
        sh("ip", "addr", "add", f"{address}/32", "dev", "lo")
    out = [Listener.on_tcp(ip, port, lambda p=path: unix(p)) for ip, port, path in pod["outbound"]]
    inbound = [
        Listener.on_unix(Path(path), lambda p=port: tcp("127.0.0.1", p))
        for port, path in pod["inbound"]
    ]
    return out + inbound


def mount(source: str, target: str) -> None:
    """Bind-mount `source` over `target`, creating an empty mount point when missing."""
    path = Path(target)
    if not path.exists():
        if Path(source).is_dir():
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    sh("mount", "--bind", source, target)


def mount_volumes(mounts: list[list[str]], keep: list[str]) -> None:
    """Bind-mount the pod's volumes, parents before children (as container runtimes order them).
    A host path in `keep` (the image's files: the checkout, the venv) that a volume would hide is
    bound again on top of it, from a handle opened before any mount: a checkout under /tmp stays
    visible in a pod whose /tmp is an emptyDir, and the rest of that /tmp is the pod's own."""
    handles = {path: os.open(path, os.O_PATH) for path in keep if os.path.exists(path)}
    try:
        for source, target in sorted(mounts, key=lambda m: len(Path(m[1]).parts)):
            mount(source, target)
            for path in hidden(os.path.normpath(target), list(handles)):
                rebind(handles[path], path)
    finally:
        for handle in handles.values():
            os.close(handle)


def hidden(target: str, keep: list[str]) -> list[str]:
    """The paths of `keep` under `target` that no other kept path under `target` covers."""
    below = [p for p in keep if under(p, target)]
    return [p for p in below if not any(q != p and under(p, q) for q in below)]


def under(path: str, parent: str) -> bool:
    """Whether `path` lies strictly inside directory `parent`."""
    return path != parent and path.startswith(parent.rstrip("/") + "/")


def rebind(handle: int, path: str) -> None:
    """Bind the file or directory opened as `handle` at `path` (through /proc, which reaches it
    even where a mount now hides it; --no-canonicalize keeps mount from resolving that link)."""
    source = f"/proc/self/fd/{handle}"
    target = Path(path)
    if os.path.isdir(source):
        target.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    subprocess.run(
        ["mount", "--no-canonicalize", "--bind", source, path],
        check=True, capture_output=True, pass_fds=(handle,),
    )  # fmt: skip


class Container:
    """One container: its process, restarts, readiness and reported state."""

    def __init__(self, spec: dict[str, Any], pod: dict[str, Any], status: Status) -> None:
        self.spec = spec
        self.pod = pod
        self.status = status
        self.name = spec["name"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: dict[str, Any] = {}
        self.restarts = 0
        self.ready = False
        self.started_at = 0.0

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "lastState": self.last_state,
            "restartCount": self.restarts,
            "ready": self.ready,
            "started": "running" in self.state,
        }

    def start(self) -> None:
        log = Path(self.spec["log"]).open("ab")
        Path(self.spec["terminationLog"]).write_text("")
        self.proc = subprocess.Popen(
            self.spec["argv"], env=self.spec["env"], stdout=log, stderr=subprocess.STDOUT,
            cwd=self.spec.get("workingDir") or "/",
        )  # fmt: skip
        self.started_at = time.monotonic()
        self.state = {"running": {"startedAt": now()}}
        self.ready = self.spec.get("readinessProbe") is None
        self.status.write()

    def terminated(self, code: int) -> None:
        started = self.state.get("running", {}).get("startedAt", now())
        state: dict[str, Any] = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": now(),
        }
        if code < 0:
            state.update(exitCode=128 - code, signal=-code)
        message = self.message(code)
        if message:
            state["message"] = message
        self.state = {"terminated": state}
        self.ready = False
        self.status.write()

    def message(self, code: int) -> str:
        text = Path(self.spec["terminationLog"]).read_text(errors="replace")[:MESSAGE_LIMIT]
        if not text and code != 0 and self.spec["terminationPolicy"] == "FallbackToLogsOnError":
            lines = Path(self.spec["log"]).read_text(errors="replace").splitlines()[-80:]
            text = "\n".join(lines)[-2048:]
        return text

    def should_restart(self, code: int) -> bool:
        policy = self.pod["restartPolicy"]
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def probe(self) -> bool:
        probe = self.spec.get("readinessProbe") or {}
        try:
            if "tcpSocket" in probe:
                port = probe["tcpSocket"]["port"]
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            if "httpGet" in probe:
                get = probe["httpGet"]
                url = f"http://127.0.0.1:{get['port']}{get.get('path', '/')}"
                with urllib.request.urlopen(url, timeout=1) as answer:
                    return 200 <= answer.status < 400
            if "exec" in probe:
                done = subprocess.run(probe["exec"]["command"], capture_output=True, timeout=5)
                return done.returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False
        return True


class Status:
    """status.json: what the agent turns into the pod's status."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.containers: list[Container] = []
        self.lock = threading.Lock()

    def write(self) -> None:
        with self.lock:
            body = {"containers": [c.report() for c in self.containers]}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(body))
            tmp.replace(self.path)


def supervise(pod: dict[str, Any], containers: list[Container], stopping: threading.Event) -> int:
    """Run the containers until each is done for good (or stopped); exit code 0 when all 0."""
    backoff = dict.fromkeys((c.name for c in containers), 1.0)
    next_start: dict[str, float] = {}
    probed: dict[str, float] = {}
    for container in containers:
        container.start()
    while True:
        busy = False
        for c in containers:
            if c.proc is not None and (code := c.proc.poll()) is not None:
                c.proc = None
                c.terminated(code)
                if not stopping.is_set() and c.should_restart(code):
                    next_start[c.name] = time.monotonic() + backoff[c.name]
                    backoff[c.name] = min(backoff[c.name] * 2, 20.0)
            if c.proc is None and c.name in next_start and not stopping.is_set():
                busy = True
                if time.monotonic() >= next_start[c.name]:
                    del next_start[c.name]
                    c.last_state, c.restarts = c.state, c.restarts + 1
                    c.start()
            if c.proc is not None:
                busy = True
                probe_readiness(c, probed)
        if not busy:
            codes = [c.state.get("terminated", {}).get("exitCode", 1) for c in containers]
            return 0 if all(code == 0 for code in codes) else 1
        time.sleep(0.1)


def probe_readiness(c: Container, probed: dict[str, float]) -> None:
    probe = c.spec.get("readinessProbe")
    if probe is None:
        return
    age = time.monotonic() - c.started_at
    if age < probe.get("initialDelaySeconds", 0):
        return
    period = probe.get("periodSeconds", 10)
    if time.monotonic() - probed.get(c.name, 0.0) < (period if c.ready else 0.5):
        return
    probed[c.name] = time.monotonic()
    ready = c.probe()
    if ready != c.ready:
        c.ready = ready
        c.status.write()


def main(path: str) -> int:
    pod = json.loads(Path(path).read_text())
    listeners = network(pod)
    mount_volumes(pod["mounts"], pod.get("keep", []))
    status = Status(Path(pod["status"]))
    containers = [Container(spec, pod, status) for spec in pod["containers"]]
    status.containers = containers
    stopping = threading.Event()

    def on_term(signum: int, _: Any) -> None:
        stopping.set()
        for c in containers:
            if c.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    try:
        return supervise(pod, containers, stopping)
    finally:
        for listener in listeners:
            listener.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

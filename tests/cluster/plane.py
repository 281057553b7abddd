"""A real control plane on loopback: etcd, kube-apiserver, controller manager, scheduler.

Built from the pinned sources by tests/cluster/controlplane/build.sh (binaries cached outside the
clone). Certificates and service-account keys are generated at start; everything listens on
127.0.0.1 and stops with `stop()`.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from cluster import pki
from gym_operator.testing.loopback import free_port

HERE = Path(__file__).resolve().parent
BUILD = HERE / "controlplane" / "build.sh"
SERVICE_CIDR = "10.96.0.0/16"
API_SERVICE_IP = "10.96.0.1"
ADMIN = "admin"
CONTROLLERS = "*,bootstrapsigner,tokencleaner"


def binaries() -> Path:
    """The directory of the control-plane binaries; builds them when missing (slow, once)."""
    done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the control plane failed:\n{done.stderr[-5000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def kubeconfig(path: Path, server: str, ca: Path, user: pki.Pair, name: str) -> Path:
    """A kubeconfig for one client-certificate user."""

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    body = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "gymops-test",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": b64(user.cert),
                    "client-key-data": b64(user.key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": "gymops-test", "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(body))
    path.chmod(0o600)
    return path


class ControlPlane:
    """One control plane in `root` (a fresh directory when None)."""

    def __init__(self, root: Path | None = None, bin_dir: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="gymops-cluster-", dir="/var/tmp"))
        self.bin = bin_dir or binaries()
        self.etcd_port, self.peer_port, self.api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pki_dir = self.root / "pki"
        self.logs = self.root / "logs"
        self.audit_log = self.root / "logs" / "audit.log"

    # ------------------------------------------------------------------ files

    def _pki(self) -> None:
        self.pki_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        ca = pki.Authority(self.pki_dir)
        self.ca = ca.pair.cert
        hosts = ("127.0.0.1", "localhost", API_SERVICE_IP, "kubernetes", "kubernetes.default",
                 "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")  # fmt: skip
        self.serving = ca.issue("apiserver", "kube-apiserver", hosts=hosts, server=True)
        self.kubelet_client = ca.issue("apiserver-kubelet", "kube-apiserver", "system:masters")
        self.sa = pki.service_account_keys(self.pki_dir)
        users = {
            ADMIN: ("kubernetes-admin", "system:masters"),
            "controller-manager": ("system:kube-controller-manager", None),
            "scheduler": ("system:kube-scheduler", None),
        }
        self.kubeconfigs = {
            name: kubeconfig(
                self.root / f"{name}.kubeconfig",
                self.server,
                self.ca,
                ca.issue(name, common, org),
                name,
            )  # fmt: skip
            for name, (common, org) in users.items()
        }
        self._authority = ca

    def node_kubeconfig(self, node: str) -> Path:
        """A kubeconfig for a node agent: user system:node:<node> in group system:nodes."""
        pair = self._authority.issue(f"node-{node}", f"system:node:{node}", "system:nodes")
        return kubeconfig(self.root / f"node-{node}.kubeconfig", self.server, self.ca, pair, node)

    @property
    def admin_kubeconfig(self) -> Path:
        """The cluster-admin kubeconfig (group system:masters)."""
        return self.kubeconfigs[ADMIN]

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [str(self.bin / name), *args], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def _etcd(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self._spawn("etcd", [
            "--name=default", f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--unsafe-no-fsync", "--log-level=warn",
        ])  # fmt: skip

    def _apiserver(self) -> None:
        self._spawn("kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}", f"--cert-dir={self.pki_dir}",
            f"--tls-cert-file={self.serving.cert}", f"--tls-private-key-file={self.serving.key}",
            f"--client-ca-file={self.ca}",
            f"--kubelet-client-certificate={self.kubelet_client.cert}",
            f"--kubelet-client-key={self.kubelet_client.key}",
            f"--service-account-key-file={self.sa.cert}",
            f"--service-account-signing-key-file={self.sa.key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # The API server's own address is loopback, which Endpoints may not name.
            "--endpoint-reconciler-type=none",
            f"--audit-policy-file={self._audit_policy()}", f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--profiling=false",
        ])  # fmt: skip

    def _audit_policy(self) -> Path:
        """Writes (create, update, patch, delete) at Metadata level, with the request bodies of
        writes to our resources: who changed what, and what they sent."""
        policy = {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived", "ResponseStarted"],
            "rules": [
                # The bodies of writes to our resources: what the operator meant to store.
                {
                    "level": "Request",
                    "verbs": ["patch", "update"],
                    "resources": [{"group": "gymops.dev", "resources": ["*", "*/status"]}],
                },
                {"level": "Metadata", "verbs": ["create", "update", "patch", "delete"]},
                {"level": "None"},
            ],
        }
        path = self.root / "audit-policy.yaml"
        path.write_text(yaml.safe_dump(policy))
        return path

    def audit(self) -> list[dict[str, Any]]:
        """The audit events so far (writes only), oldest first."""
        if not self.audit_log.exists():
            return []
        lines = self.audit_log.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _controller_manager(self) -> None:
        config = self.kubeconfigs["controller-manager"]
        self._spawn("kube-controller-manager", [
            f"--kubeconfig={config}", f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--cert-dir={self.pki_dir / 'kcm'}",
            f"--controllers={CONTROLLERS}", "--leader-elect=false",
            f"--service-account-private-key-file={self.sa.key}", f"--root-ca-file={self.ca}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Finished Jobs are removed by their TTL; pod GC keeps up with short test runs.
            "--terminated-pod-gc-threshold=1000",
        ])  # fmt: skip

    def _scheduler(self) -> None:
        config = self.kubeconfigs["scheduler"]
        self._spawn("kube-scheduler", [
            f"--kubeconfig={config}", f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--cert-dir={self.pki_dir / 'scheduler'}", "--leader-elect=false",
        ])  # fmt: skip

    def start(self, timeout: float = 120.0) -> ControlPlane:
        """Start everything; returns once the API server is ready."""
        self._pki()
        self._etcd()
        self._apiserver()
        self.wait_ready(timeout)
        self._controller_manager()
        self._scheduler()
        return self

    def wait_ready(self, timeout: float = 120.0, watched: tuple[str, ...] | None = None) -> None:
        """Wait until /readyz answers ok (fails naming the log of a `watched` process that died;
        every process when None)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        admin = self._authority_admin()
        context.load_cert_chain(str(admin.cert), str(admin.key))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if (watched is None or name in watched) and proc.poll() is not None:
                    log = (self.logs / f"{name}.log").read_text(errors="replace")[-4000:]
                    raise RuntimeError(f"{name} exited {proc.returncode}:\n{log}")
            try:
                with urllib.request.urlopen(
                    f"{self.server}/readyz", context=context, timeout=5
                ) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the API server was not ready within {timeout} s (logs: {self.logs})")

    def _authority_admin(self) -> pki.Pair:
        return pki.Pair(self.pki_dir / f"{ADMIN}.crt", self.pki_dir / f"{ADMIN}.key")

    def restart_apiserver(self) -> None:
        """Stop the API server (SIGTERM) and start it again on the same port; a controller
        manager or scheduler that gave up meanwhile is started again too."""
        self._stop("kube-apiserver")
        self._apiserver()
        self.wait_ready(watched=("etcd", "kube-apiserver"))
        for name, start in (
            ("kube-controller-manager", self._controller_manager),
            ("kube-scheduler", self._scheduler),
        ):
            if self.procs[name].poll() is not None:
                start()

    def _stop(self, name: str, grace: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self, keep: bool = False) -> None:
        """Stop every process (newest first); remove the directory unless `keep`."""
        for name in reversed(list(self.procs)):
            self._stop(name)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)

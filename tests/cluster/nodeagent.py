"""The node agent: the one stand-in of the test cluster, playing the kubelet of one Node.

Why it exists: a real kubelet needs a container runtime, cgroups and images, none of which the
test machines have; the operator's children are pods, and their containers are our own `gymops`
entrypoints, which run as well as local processes. So the agent watches the Pods the real
scheduler binds to its Node and runs each one in a sandbox of its own (cluster.podshim: fresh
network and mount namespaces), then reports phase, container states, exit codes, restart counts,
termination messages and readiness back to the API server as a kubelet does. Everything else
(Job, Deployment, ReplicaSet, EndpointSlice, garbage collection, TTL) is the real control plane.

Networking, chosen as the simplest that gives real Service semantics here: every pod has its own
network namespace with its own pod IP on loopback, so two replicas can listen on one port. Its
/etc/hosts (bind-mounted in its mount namespace) names every Service of its namespace by its
cluster DNS names at its ClusterIP, and the pod listens on each ClusterIP:port; connections go
through a Unix socket to the agent, which picks a ready endpoint from the Service's EndpointSlices
(round robin) and connects into that pod's namespace through the Unix socket the pod serves for
its container port. A headless Service's names stand for each ready endpoint's pod IP, and the
pod listens on each of those IP:ports, bridged to that one pod. The test's own loopback servers
(moto S3, the stub model) are reachable from pods at their usual 127.0.0.1 address once the test
`expose`s their port.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config

from cluster import podspec
from cluster.netbridge import Connect, Listener, tcp, unix

log = logging.getLogger(__name__)
TESTS = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.25
LEASE_SECONDS = 40
BASE_ENV = (
    "PATH",
    "PYTHONPATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "PYTHONFAULTHANDLER",
    "VIRTUAL_ENV",
)
Manifest = dict[str, Any]
OUR_IMAGE = "ghcr.io/gymops/gym-operator"
API_SERVICE_IP = "10.96.0.1"


def now() -> str:
    """An RFC 3339 timestamp."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def own_ports(spec: Manifest) -> set[int]:
    """The container ports a pod declares."""
    return {int(p["containerPort"]) for c in spec["containers"] for p in c.get("ports") or []}


def default_images() -> dict[str, podspec.Image]:
    """Our worker image: its `gymops` is the venv's."""
    gymops = [str(Path(sys.executable).with_name("gymops"))]
    return {OUR_IMAGE: {"gymops": gymops, "": gymops}}


@dataclass
class Sandbox:
    """One pod the agent runs."""

    uid: str
    namespace: str
    name: str
    ip: str
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    started: str = ""
    kill_at: float | None = None
    reported: str = ""
    waiting: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


class NodeAgent:
    """Plays the kubelet of Node `node` (see the module docstring)."""

    def __init__(
        self,
        kubeconfig: Path,
        node: str,
        root: Path,
        images: dict[str, podspec.Image] | None = None,
    ) -> None:
        self.node = node
        self.root = root
        self.images = {**default_images(), **(images or {})}
        self.api = config.new_client_from_config(str(kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.pods: dict[str, Sandbox] = {}
        self.by_ip: dict[str, Sandbox] = {}
        self.exposed: dict[int, Listener] = {}
        self.services: dict[tuple[str, int], Listener] = {}
        self.backends: dict[tuple[str, int], list[tuple[str, int]]] = {}
        self.hosts: dict[str, list[tuple[str, list[str]]]] = {}
        self._ips = itertools.count(2)
        self._rr = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"node-agent-{node}", daemon=True)
        for sub in ("pods", "services", "external"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> NodeAgent:
        """Register the Node (Ready), then serve its pods in a thread."""
        self._register()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Kill every pod process and stop the loop (the Node object stays)."""
        self._stop.set()
        self._thread.join(30)
        for box in list(self.pods.values()):
            self._kill(box)
        for listener in [*self.services.values(), *self.exposed.values()]:
            listener.close()

    def expose(self, port: int) -> None:
        """Make 127.0.0.1:`port` of the host reachable from pods started from now on."""
        if port not in self.exposed:
            path = self.root / "external" / f"{port}.sock"
            self.exposed[port] = Listener.on_unix(path, lambda: tcp("127.0.0.1", port))

    def service_socket(self, cluster_ip: str, port: int) -> Path:
        """Where a connection to Service cluster_ip:port (or to a headless Service's endpoint
        IP:port) enters this node, where a pod's listener for it forwards to; a test connects here
        as `port-forward svc/...` would."""
        return self.root / "services" / f"{cluster_ip}_{port}.sock"

    def logs(self, namespace: str) -> str:
        """The container logs of the namespace's pods still on this node (for failure reports)."""
        parts = []
        for box in list(self.pods.values()):
            if box.namespace != namespace:
                continue
            for log_file in sorted((box.dir / "containers").glob("*/log")):
                text = log_file.read_text(errors="replace")[-3000:]
                parts.append(f"--- {box.name}/{log_file.parent.name}\n{text}")
            sandbox = box.dir / "sandbox.log"
            if sandbox.exists() and sandbox.stat().st_size:
                parts.append(
                    f"--- {box.name} sandbox\n{sandbox.read_text(errors='replace')[-2000:]}"
                )
        return "\n".join(parts)

    def _register(self) -> None:
        body = {
            "metadata": {
                "name": self.node,
                "labels": {"kubernetes.io/hostname": self.node, "kubernetes.io/os": "linux"},
            },
        }
        with contextlib.suppress(client.ApiException):
            self.core.create_node(body)
        self._node_status()
        self._renew_lease()

    def _node_status(self) -> None:
        stamp = now()
        capacity = {"cpu": "32", "memory": "128Gi", "pods": "250", "ephemeral-storage": "100Gi"}
        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "node agent is posting ready status",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.37.2",
                "kubeProxyVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": "",
                "osImage": "",
                "containerRuntimeVersion": "local://0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self._patch(f"/api/v1/nodes/{self.node}/status", {"status": status})

    def _renew_lease(self) -> None:
        coord = client.CoordinationV1Api(self.api)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "metadata": {"name": self.node},
            "spec": {
                "holderIdentity": self.node,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": stamp,
            },
        }
        try:
            coord.patch_namespaced_lease(self.node, "kube-node-lease", body)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            coord.create_namespaced_lease("kube-node-lease", body)

    def _patch(self, path: str, body: Manifest) -> None:
        """A strategic-merge PATCH (what a kubelet sends for status)."""
        headers = {
            "Content-Type": "application/strategic-merge-patch+json",
            "Accept": "application/json",
        }
        request = self.api.param_serialize(
            method="PATCH",
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        answer = self.api.call_api(*request)
        data = answer.read()
        if answer.status >= 400:
            raise client.ApiException(status=answer.status, reason=data.decode(errors="replace"))

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        last_lease = time.monotonic()
        while not self._stop.is_set():
            try:
                self._sync_services()
                self._sync_pods()
                if time.monotonic() - last_lease > LEASE_SECONDS / 4:
                    self._renew_lease()
                    self._node_status()
                    last_lease = time.monotonic()
            except Exception:  # the loop must survive an API server restart
                log.exception("node agent %s: sync failed", self.node)
                time.sleep(1)
            self._stop.wait(POLL_SECONDS)

    def _sync_pods(self) -> None:
        listed = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.node}")
        pods = self.api.sanitize_for_serialization(listed.items)
        if any(pod["metadata"]["uid"] not in self.pods for pod in pods):
            self._sync_services()  # a new pod sees every Service made before it
        seen = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            box = self.pods.get(uid)
            if box is None:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                box = self._admit(pod)
            self._tend(box, pod)
        for uid in set(self.pods) - seen:
            self._forget(self.pods[uid])

    def _admit(self, pod: Manifest) -> Sandbox:
        meta = pod["metadata"]
        number = next(self._ips)
        ip = f"10.244.{number // 250}.{number % 250 + 2}"
        box = Sandbox(
            meta["uid"], meta["namespace"], meta["name"], ip, self.root / "pods" / meta["uid"]
        )
        box.dir.mkdir(parents=True, exist_ok=True)
        self.pods[box.uid] = box
        self.by_ip[ip] = box
        return box

    def _tend(self, box: Sandbox, pod: Manifest) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._terminate(box, pod)
            return
        if box.proc is None and not box.finished:
            self._launch(box, pod)
        self._report(box, pod)

    # ------------------------------------------------------------------ running pods

    def _lookup(self, namespace: str) -> podspec.Lookup:
        def lookup(kind: str, name: str) -> dict[str, str] | None:
            try:
                if kind == "Secret":
                    secret = self.core.read_namespaced_secret(name, namespace)
                    data = podspec.decode(secret.data, binary=True) or {}
                    return {**data, **(secret.string_data or {})}
                return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
            except client.ApiException as exc:
                if exc.status in (403, 404):
                    return None
                raise

        return lookup

    def _token(self, pod: Manifest) -> podspec.Token:
        """Tokens of the pod's ServiceAccount, bound to the pod (what a kubelet projects)."""
        meta = pod["metadata"]

        def token(projection: Manifest) -> str:
            spec: Manifest = {
                "expirationSeconds": projection.get("expirationSeconds", 3607),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            }
            if projection.get("audience"):
                spec["audiences"] = [projection["audience"]]
            account = pod["spec"].get("serviceAccountName") or "default"
            answer = self.core.create_namespaced_service_account_token(
                account, meta["namespace"], {"spec": spec}
            )
            return str(answer.status.token)

        return token

    def _launch(self, box: Sandbox, pod: Manifest) -> None:
        spec = pod["spec"]
        lookup = self._lookup(box.namespace)
        pod.setdefault("status", {})["podIP"] = box.ip
        pod["status"]["hostIP"] = "127.0.0.1"
        try:
            volumes = podspec.write_volumes(pod, box.dir / "volumes", lookup, self._token(pod))
            containers = [self._container(box, c, pod, lookup, volumes) for c in spec["containers"]]
        except (podspec.ConfigError, podspec.ImageError) as exc:
            reason = (
                "ImagePullBackOff"
                if isinstance(exc, podspec.ImageError)
                else "CreateContainerConfigError"
            )
            box.waiting = {"reason": reason, "message": str(exc)}
            return
        box.waiting = {}
        mounts = [[str(path), target] for c in containers for path, target in c.pop("mounts")]
        hosts = box.dir / "hosts"
        hosts.write_text(self._hosts_file(box))
        mounts.append([str(hosts), "/etc/hosts"])
        document = {
            "podIP": box.ip,
            "restartPolicy": spec.get("restartPolicy", "Always"),
            "outbound": self._outbound(own_ports(spec), box.ip),
            "inbound": [
                [port, str(box.dir / f"port-{port}.sock")]
                for c in spec["containers"]
                for port in (int(p["containerPort"]) for p in c.get("ports") or [])
            ],
            "mounts": mounts,
            "keep": self._image_files(spec),
            "containers": containers,
            "status": str(box.dir / "status.json"),
        }
        path = box.dir / "pod.json"
        path.write_text(json.dumps(document))
        path.chmod(0o600)
        env = {**{k: v for k, v in os.environ.items() if k in BASE_ENV}}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
        out = (box.dir / "sandbox.log").open("ab")
        box.proc = subprocess.Popen(
            [
                "unshare",
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                sys.executable,
                "-m",
                "cluster.podshim",
                str(path),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=box.dir,
        )
        box.started = now()

    def _image_files(self, spec: Manifest) -> list[str]:
        """Host paths a pod's volumes must not hide, as they are its images' files here: the
        checkout and its venv, the agent's own directory, and every absolute path in the image
        table entries of the pod's images (a checkout under /tmp stays visible in a pod whose
        /tmp is an emptyDir)."""
        paths = {TESTS.parent, Path(sys.prefix), self.root}
        paths.update(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
        for c in spec["containers"]:
            table = self.images.get(podspec.repository(c.get("image", ""))) or {}
            paths.update(Path(arg) for argv in table.values() for arg in argv if arg[:1] == "/")
        found = {q for p in paths if p.is_absolute() for q in (p, p.resolve()) if q.exists()}
        return sorted(str(p) for p in found)

    def _container(
        self,
        box: Sandbox,
        c: Manifest,
        pod: Manifest,
        lookup: podspec.Lookup,
        volumes: dict[str, Path],
    ) -> Manifest:
        base = {k: v for k, v in os.environ.items() if k in BASE_ENV}
        env = {
            **base,
            "HOSTNAME": box.name,
            "KUBERNETES_SERVICE_HOST": API_SERVICE_IP,
            "KUBERNETES_SERVICE_PORT": "443",
            **podspec.environment(c, pod, lookup),
        }
        cdir = box.dir / "containers" / c["name"]
        cdir.mkdir(parents=True, exist_ok=True)
        (cdir / "termination-log").touch()
        mounts = [
            (volumes[m["name"]] / m.get("subPath", ""), m["mountPath"])
            for m in c.get("volumeMounts") or []
        ]
        mounts.append(
            (
                cdir / "termination-log",
                c.get("terminationMessagePath") or podspec.DEFAULT_TERMINATION_PATH,
            )
        )
        return {
            "name": c["name"],
            "argv": podspec.argv(c, self.images),
            "env": env,
            "workingDir": c.get("workingDir"),
            "log": str(cdir / "log"),
            "terminationLog": str(cdir / "termination-log"),
            "terminationPolicy": c.get("terminationMessagePolicy", "File"),
            "readinessProbe": podspec.resolved_probe(c),
            "mounts": mounts,
        }

    def _terminate(self, box: Sandbox, pod: Manifest) -> None:
        """SIGTERM, then SIGKILL after the grace period; then remove the pod for good."""
        if box.proc is not None and box.proc.poll() is None:
            if box.kill_at is None:
                grace = pod["metadata"].get("deletionGracePeriodSeconds")
                grace = 30 if grace is None else int(grace)
                box.kill_at = time.monotonic() + grace
                with contextlib.suppress(ProcessLookupError):
                    box.proc.send_signal(signal.SIGTERM)
            if time.monotonic() < box.kill_at:
                self._report(box, pod)
                return
            self._kill(box)
        self._report(box, pod)
        opts = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=box.uid)
        )
        with contextlib.suppress(client.ApiException):
            self.core.delete_namespaced_pod(box.name, box.namespace, body=opts)

    def _kill(self, box: Sandbox) -> None:
        """Kill the pod's whole process group, also when its sandbox process already exited
        (a container's children may outlive it)."""
        if box.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(box.proc.pid, signal.SIGKILL)
        box.proc.wait(10)

    def _forget(self, box: Sandbox) -> None:
        self._kill(box)
        self.pods.pop(box.uid, None)
        self.by_ip.pop(box.ip, None)
        shutil.rmtree(box.dir, ignore_errors=True)

    # ------------------------------------------------------------------ status

    def _report(self, box: Sandbox, pod: Manifest) -> None:
        status = self._status(box, pod)
        text = json.dumps(status, sort_keys=True)
        if text == box.reported:
            return
        try:
            self._patch(
                f"/api/v1/namespaces/{box.namespace}/pods/{box.name}/status", {"status": status}
            )
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        box.reported = text

    def _status(self, box: Sandbox, pod: Manifest) -> Manifest:
        states = {}
        path = box.dir / "status.json"
        if path.exists():
            states = {c["name"]: c for c in json.loads(path.read_text())["containers"]}
        exited = box.proc is not None and box.proc.poll() is not None
        containers = []
        for c in pod["spec"]["containers"]:
            found = states.get(c["name"])
            if found is None:
                waiting = box.waiting or {"reason": "ContainerCreating"}
                if exited:
                    waiting = {}
                    found = {
                        "name": c["name"],
                        "restartCount": 0,
                        "ready": False,
                        "started": False,
                        "state": {
                            "terminated": {
                                "exitCode": 128,
                                "reason": "StartError",
                                "message": self._sandbox_log(box),
                            }
                        },
                    }
                else:
                    found = {
                        "name": c["name"],
                        "state": {"waiting": waiting},
                        "restartCount": 0,
                        "ready": False,
                        "started": False,
                    }
            elif exited and "running" in found["state"]:
                found = {
                    **found,
                    "ready": False,
                    "started": False,
                    "state": {"terminated": {"exitCode": 137, "reason": "Error"}},
                }
            found = {
                **found,
                "image": c.get("image", ""),
                "imageID": c.get("image", ""),
                "containerID": f"local://{box.uid}/{c['name']}",
            }
            if not found.get("lastState"):
                found.pop("lastState", None)
            containers.append(found)
        phase = self._phase(pod, containers, box)
        box.finished = phase in ("Succeeded", "Failed")
        ready = phase == "Running" and all(c["ready"] for c in containers)
        stamp = now()

        def condition(kind: str, value: bool) -> Manifest:
            return {"type": kind, "status": str(value), "lastTransitionTime": stamp}

        return {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": box.ip,
            "podIPs": [{"ip": box.ip}],
            "startTime": box.started or stamp,
            "containerStatuses": containers,
            "conditions": [
                condition("PodReadyToStartContainers", box.proc is not None),
                condition("Initialized", True),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
        }

    @staticmethod
    def _phase(pod: Manifest, containers: list[Manifest], box: Sandbox) -> str:
        if box.proc is None:
            return "Pending"
        terminated = [c["state"].get("terminated") for c in containers]
        policy = pod["spec"].get("restartPolicy", "Always")
        if box.proc.poll() is not None or (
            policy != "Always"
            and all(terminated)
            and (policy == "Never" or all(t["exitCode"] == 0 for t in terminated))
        ):
            if all(t is not None and t["exitCode"] == 0 for t in terminated):
                return "Succeeded"
            return "Failed"
        if any("running" in c["state"] for c in containers) or any(terminated):
            return "Running"
        return "Pending"

    @staticmethod
    def _sandbox_log(box: Sandbox) -> str:
        path = box.dir / "sandbox.log"
        return path.read_text(errors="replace")[-1024:] if path.exists() else "sandbox exited"

    # ------------------------------------------------------------------ services

    def _sync_services(self) -> None:
        """Hosts entries and listeners of every Service: a ClusterIP Service is its ClusterIP,
        bridged to a ready endpoint per connection; a headless Service (clusterIP None) is each
        ready endpoint's own IP under the same names, bridged to that one pod."""
        services = self.api.sanitize_for_serialization(
            self.core.list_service_for_all_namespaces().items
        )
        by_service = self._slices_by_service()
        hosts: dict[str, list[tuple[str, list[str]]]] = {}
        wanted: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for svc in services:
            meta, spec = svc["metadata"], svc["spec"]
            ip = spec.get("clusterIP")
            if not ip:
                continue
            ns, name = meta["namespace"], meta["name"]
            names = [name, f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]
            slices = by_service.get((ns, name), [])
            if ip == "None":
                for address, ports in self._ready_addresses(slices):
                    hosts.setdefault(ns, []).append((address, names))
                    wanted.update({(address, port): [(address, port)] for port in ports})
                continue
            hosts.setdefault(ns, []).append((ip, names))
            for port in spec.get("ports") or []:
                wanted[(ip, int(port["port"]))] = self._endpoints(slices, port.get("name"))
        self._listen(wanted)
        self.hosts = hosts

    def _slices_by_service(self) -> dict[tuple[str, str], list[Manifest]]:
        discovery = client.DiscoveryV1Api(self.api)
        slices = self.api.sanitize_for_serialization(
            discovery.list_endpoint_slice_for_all_namespaces().items
        )
        by_service: dict[tuple[str, str], list[Manifest]] = {}
        for item in slices:
            owner = (item["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
            if owner:
                by_service.setdefault((item["metadata"]["namespace"], owner), []).append(item)
        return by_service

    def _listen(self, wanted: dict[tuple[str, int], list[tuple[str, int]]]) -> None:
        """A Unix socket per (IP, port) a pod may call, routed to `wanted[key]`'s backends."""
        for key, backends in wanted.items():
            self.backends[key] = backends
            if key not in self.services:
                path = self.service_socket(*key)
                self.services[key] = Listener.on_unix(path, lambda k=key: self._route(k))
        for key in set(self.services) - set(wanted):
            self.services.pop(key).close()
            self.backends.pop(key, None)

    @staticmethod
    def _ready_addresses(slices: list[Manifest]) -> list[tuple[str, list[int]]]:
        """(address, ports) of each ready endpoint: what a headless Service's DNS names hold."""
        out: dict[str, list[int]] = {}
        for item in slices:
            ports = [int(p["port"]) for p in item.get("ports") or [] if p.get("port")]
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint["addresses"]:
                    out.setdefault(address, [])
                    out[address] += [port for port in ports if port not in out[address]]
        return sorted(out.items())

    @staticmethod
    def _endpoints(slices: list[Manifest], port_name: str | None) -> list[tuple[str, int]]:
        out = []
        for item in slices:
            ports = [
                p["port"] for p in item.get("ports") or [] if p.get("name") in (port_name, None, "")
            ]
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                out += [
                    (address, int(port)) for address in endpoint["addresses"] for port in ports[:1]
                ]
        return out

    def _route(self, key: tuple[str, int]) -> Connect | None:
        if key == (API_SERVICE_IP, 443):
            # The `kubernetes` Service: its endpoint, the API server, is on loopback, which no
            # EndpointSlice may hold (the API server runs with --endpoint-reconciler-type=none).
            server = urlsplit(self.api.configuration.host)
            return tcp(server.hostname or "127.0.0.1", server.port or 443)
        backends = [(ip, port) for ip, port in self.backends.get(key, []) if ip in self.by_ip]
        if not backends:
            return None
        ip, port = backends[next(self._rr) % len(backends)]
        return unix(self.by_ip[ip].dir / f"port-{port}.sock")

    def _outbound(self, skip: set[int], own_ip: str) -> list[list[Any]]:
        """The pod's listeners for Service IPs (and the pod IPs of headless Services' endpoints)
        and the exposed test servers, except on ports the pod serves itself: a server binding
        0.0.0.0:port would collide with a listener on a Service IP and that port (kube-proxy
        rewrites packets instead; this agent has no iptables). So a pod cannot call a Service on
        a port it listens on itself. Its own pod IP it reaches directly."""
        out: list[list[Any]] = [
            [ip, port, str(self.service_socket(ip, port))]
            for ip, port in self.services
            if port not in skip and ip != own_ip
        ]
        out += [
            ["127.0.0.1", port, str(self.root / "external" / f"{port}.sock")]
            for port in self.exposed
            if port not in skip
        ]
        return out

    def _hosts_file(self, box: Sandbox) -> str:
        lines = ["127.0.0.1 localhost", f"{box.ip} {box.name}"]
        lines += [f"{ip} {' '.join(names)}" for ip, names in self.hosts.get(box.namespace, [])]
        return "\n".join(lines) + "\n"

"""The chart's rollout viewer on the real control plane: `helm install` with viewer.enabled, its
pod run by the node agent behind its own ServiceAccount; reached through its Service it lists the
namespace's RolloutJobs and Datasets with their phase and opens their outputs (moto S3), and that
account may read the two kinds and nothing more. A viewer whose account may not list is refused
by the API server, says so, and lists once allowed."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster.netbridge import Listener, unix
from clusterkit import GYMOPS, Cluster, World, rolloutjob, token_kubeconfig, wait_for
from deploy.deploykit import CHART, find_helm, run
from kubernetes import client

from gym_operator.testing.loopback import free_port

RELEASE = "gym-operator"
VIEWER = f"{RELEASE}-rollout-viewer"
TASKS, REPEATS = 4, 2
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WAIT_MS = 60_000
HOME_CLIP = {"x": 0, "y": 0, "width": 1000, "height": 220}
CHARTS_DRAWN = """() => {
    const imgs = [...document.querySelectorAll(".charts img")];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
}"""


class _ServiceConnection(http.client.HTTPConnection):
    """HTTP to a Service, entering where the node agent routes Service traffic to a ready pod."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self.socket_path)
        self.sock = sock


class Viewer:
    """HTTP to a viewer; `behind_service` reaches the chart's as `kubectl port-forward svc/...`
    would."""

    def __init__(self, connect: Callable[[], http.client.HTTPConnection]) -> None:
        self.connect = connect
        self.socket: Path | None = None

    @classmethod
    def behind_service(cls, cluster: Cluster) -> Viewer:
        """The viewer Service of the release, entered where the node agent routes it."""
        service = cluster.core.read_namespaced_service(VIEWER, cluster.namespace)
        (port,) = service.spec.ports
        path = cluster.kube.agent.service_socket(service.spec.cluster_ip, port.port)
        wait_for(path.exists, "the node agent's route to the viewer Service", 30)
        viewer = cls(lambda: _ServiceConnection(str(path)))
        viewer.socket = path
        return viewer

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of GET `path`; redirects are not followed."""
        conn = self.connect()
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            conn.close()

    def answer(self) -> tuple[int, dict[str, str], bytes] | None:
        """GET / once the Service routes to a ready pod (its EndpointSlice follows readiness)."""
        try:
            return self.get("/")
        except OSError:
            return None

    def json(self, path: str) -> Any:
        """The JSON body of a 200 answer."""
        status, _, body = self.get(path)
        assert status == 200, f"GET {path}: {status} {body[:500]!r}"
        return json.loads(body)

    @contextlib.contextmanager
    def forwarded(self) -> Iterator[str]:
        """A loopback TCP port piped to the Service, as `kubectl port-forward` gives; its URL."""
        path = self.socket
        assert path is not None, "only a viewer behind its Service is forwarded"
        port = free_port()
        listener = Listener.on_tcp("127.0.0.1", port, lambda: unix(path))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            listener.close()


@pytest.fixture
def release(cluster: Cluster, world: World) -> Iterator[str]:
    """The chart installed into the test's namespace with the viewer on; uninstalled after."""
    helm = find_helm()
    env_kube = ["--kubeconfig", str(cluster.kubeconfig), "--namespace", cluster.namespace]
    sets = [
        "crds.install=false",  # the session's CRDs are in place already
        "rbac.scope=namespaces",
        "rbac.aggregateToDefaultRoles=false",
        "operator.reconcileSeconds=1",
        "operator.progressSeconds=1",
        f"s3.endpointURL={world.s3_url}",
        "s3.region=us-east-1",
        "s3.credentialsSecret=s3",
        "viewer.enabled=true",
        f"viewer.s3.endpointURL={world.s3_url}",
        "viewer.s3.region=us-east-1",
        "viewer.s3.credentialsSecret=s3",
    ]
    args = [helm, "install", RELEASE, str(CHART), *env_kube, "--wait", "--timeout", "3m"]
    for item in sets:
        args += ["--set", item]
    done = run(args)
    assert done.returncode == 0, done.stderr
    yield RELEASE
    cluster.delete_resources()  # while the operator runs, to release its finalizers
    run([helm, "uninstall", RELEASE, *env_kube, "--wait", "--timeout", "2m"])


def dataset(world: World, name: str, job: str) -> dict[str, Any]:
    """An SFT Dataset of one RolloutJob's rollouts."""
    return {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": name},
        "spec": {
            "sources": [{"rolloutJobRef": job}],
            "kind": "sft",
            "format": "trl",
            "output": {"uri": f"s3://{world.bucket}/datasets/{name}/"},
            "s3": world.s3(),
        },
    }


def listed(viewer: Viewer, names: dict[str, str]) -> dict[str, dict[str, Any]] | None:
    """The viewer's entries by name once every one in `names` shows its expected phase."""
    entries = {v["name"]: v for v in viewer.json("/api/views")}
    phases = {name: (entries.get(name) or {}).get("phase") for name in names}
    return entries if phases == names else None


def allowed(
    cluster: Cluster, account: str, verb: str, resource: str, group: str, subresource: str = ""
) -> bool:
    """A SubjectAccessReview: may the ServiceAccount do `verb` on `resource` in the namespace?"""
    review = {
        "spec": {
            "user": f"system:serviceaccount:{cluster.namespace}:{account}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{cluster.namespace}"],
            "resourceAttributes": {
                "namespace": cluster.namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
            },
        }
    }
    answer = client.AuthorizationV1Api(cluster.api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)


def test_the_viewer_lists_and_opens_the_namespaces_outputs_read_only(
    cluster: Cluster, world: World, release: str, tmp_path: Path
) -> None:
    ns = cluster.namespace
    (pod,) = cluster.raw_list(
        f"/api/v1/namespaces/{ns}/pods?labelSelector=app.kubernetes.io%2Fcomponent%3Drollout-viewer"
    )
    assert pod["spec"]["serviceAccountName"] == VIEWER
    viewer = Viewer.behind_service(cluster)
    status, _, page = wait_for(viewer.answer, "the viewer's Service to answer", 60)
    assert status == 200 and b"<html" in page.lower()

    cluster.create(world.rolloutjob("viewed", tasks=TASKS))
    cluster.create(dataset(world, "viewed-sft", "viewed"))
    job_status = cluster.wait_phase("RolloutJob", "viewed", "Succeeded", timeout=240)
    cluster.wait_phase("Dataset", "viewed-sft", "Succeeded", timeout=180)
    assert job_status["viewerPath"] == f"/rolloutjobs/{ns}/viewed"

    expected = {f"{ns}/viewed": "Succeeded", f"{ns}/viewed-sft": "Succeeded"}
    entries = wait_for(lambda: listed(viewer, expected), "both resources listed Succeeded", 60)
    job, built = entries[f"{ns}/viewed"], entries[f"{ns}/viewed-sft"]
    assert (job["kind"], job["uri"]) == ("job", f"s3://{world.bucket}/rollouts/viewed/")
    assert (built["kind"], built["uri"]) == ("dataset", f"s3://{world.bucket}/datasets/viewed-sft/")

    status, headers, _ = viewer.get(job_status["viewerPath"])
    assert (status, headers["Location"]) == (302, f"/#/v/{job['id']}")

    def indexed() -> dict[str, Any] | None:
        found = viewer.json(f"/api/v/{job['id']}/overview")
        return found if found["status"]["success"] and not found["status"]["indexing"] else None

    overview = wait_for(indexed, "the job's output indexed", 60)
    assert overview["counts"]["rollouts"] == TASKS * REPEATS
    assert overview["counts"]["tasks"] == TASKS
    assert overview["status"]["uri"] == job["uri"]
    summary = viewer.json(f"/api/v/{built['id']}/dataset")
    assert summary["counts"]["input"] == TASKS * REPEATS
    with viewer.forwarded() as url:
        in_a_browser(url, job_status["viewerPath"], ns, tmp_path)
    assert_read_only(cluster)


def in_a_browser(url: str, viewer_path: str, ns: str, tmp_path: Path) -> None:
    """Headless Chromium (Debian's) on the forwarded viewer: the home page lists both resources
    with their phase; the job's viewerPath opens its overview."""
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make chromium` installs it"
    shots = Path(os.environ.get("GYMOPS_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 700})
            page.set_default_timeout(WAIT_MS)
            page.goto(url + "/")
            outputs = page.locator("#outputs")
            expect(outputs.locator("tr", has_text=f"{ns}/viewed-sft")).to_contain_text("Succeeded")
            job_row = outputs.locator("tr", has_text="RolloutJob")
            expect(job_row).to_contain_text(f"{ns}/viewed")
            expect(job_row).to_contain_text("Succeeded")
            page.screenshot(path=str(shots / "cluster-home.png"), clip=HOME_CLIP)
            page.goto(url + viewer_path)
            expect(page.locator('[data-card="rollouts"] .n')).to_have_text(str(TASKS * REPEATS))
            expect(page.locator("#job-status")).to_contain_text("_SUCCESS written")
            page.wait_for_function(CHARTS_DRAWN, timeout=WAIT_MS)  # matplotlib, in the pod
            page.screenshot(path=str(shots / "cluster-job.png"), full_page=True)
        finally:
            browser.close()


def assert_read_only(cluster: Cluster) -> None:
    """The viewer's account may read RolloutJobs and Datasets, write nothing, read nothing else,
    and (audit log) wrote nothing while it served."""
    for resource in ("rolloutjobs", "datasets"):
        for verb in ("get", "list", "watch"):
            assert allowed(cluster, VIEWER, verb, resource, "gymops.dev"), (verb, resource)
        for verb in ("create", "update", "patch", "delete", "deletecollection"):
            assert not allowed(cluster, VIEWER, verb, resource, "gymops.dev"), (verb, resource)
        assert not allowed(cluster, VIEWER, "patch", resource, "gymops.dev", "status")
    for verb, resource in [("get", "secrets"), ("list", "pods"), ("create", "pods")]:
        assert not allowed(cluster, VIEWER, verb, resource, ""), (verb, resource)
    assert not allowed(cluster, VIEWER, "create", "jobs", "batch")
    account = f"system:serviceaccount:{cluster.namespace}:{VIEWER}"
    writes = [
        e for e in cluster.kube.plane.audit() if (e.get("user") or {}).get("username") == account
    ]
    assert writes == [], "the viewer wrote to the API server"


def grant_reading(cluster: Cluster, account: str) -> None:
    """The chart's viewer Role (read RolloutJobs and Datasets) bound to `account`."""
    rbac = client.RbacAuthorizationV1Api(cluster.api_client)
    rules = [
        {
            "apiGroups": ["gymops.dev"],
            "resources": ["rolloutjobs", "datasets"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    rbac.create_namespaced_role(cluster.namespace, {"metadata": {"name": account}, "rules": rules})
    subject = {"kind": "ServiceAccount", "name": account, "namespace": cluster.namespace}
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account}
    body = {"metadata": {"name": account}, "subjects": [subject], "roleRef": role}
    rbac.create_namespaced_role_binding(cluster.namespace, body)


def refusal_on_the_page(url: str, ns: str) -> None:
    """The home page of a viewer whose listing is refused says why instead of staying blank."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            expect(page.locator("p.error")).to_contain_text(
                f"Cannot list what to open: cannot list rolloutjobs in namespace {ns}: 403"
            )
        finally:
            browser.close()


def test_a_refused_listing_is_named_and_the_viewer_lists_once_allowed(
    cluster: Cluster, tmp_path: Path
) -> None:
    ns, account = cluster.namespace, "late-viewer"
    cluster.core.create_namespaced_service_account(ns, {"metadata": {"name": account}})
    kubeconfig = token_kubeconfig(cluster, account, tmp_path / "viewer.kubeconfig")
    port = free_port()
    args = [GYMOPS, "view", "--kubernetes", f"--namespace={ns}", f"--port={port}"]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with (tmp_path / "viewer.log").open("wb") as log:
        proc = subprocess.Popen(
            [*args, "--no-browser", "--no-cache"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    viewer = Viewer(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=30))

    def serving() -> tuple[int, dict[str, str], bytes] | None:
        if proc.poll() is not None:
            log = (tmp_path / "viewer.log").read_text(errors="replace")
            raise AssertionError(f"gymops view exited {proc.returncode}:\n{log[-3000:]}")
        return viewer.answer()

    try:
        wait_for(serving, "gymops view to serve", 60)
        status, _, body = viewer.get("/api/views")
        error = json.loads(body)["error"]
        assert status == 502 and error.startswith(f"cannot list rolloutjobs in namespace {ns}: 403")
        assert f'"system:serviceaccount:{ns}:{account}" cannot list' in error
        status, _, body = viewer.get(f"/rolloutjobs/{ns}/later")
        assert status == 502 and b"403" in body
        refusal_on_the_page(f"http://127.0.0.1:{port}/", ns)
        grant_reading(cluster, account)
        cluster.create(rolloutjob("later"))  # no operator here: no status yet
        entries = wait_for(
            lambda: listed(viewer, {f"{ns}/later": "Pending"}), "the job listed once allowed", 60
        )
        assert entries[f"{ns}/later"]["uri"] == "s3://bucket/rollouts/later/"
        status, headers, _ = viewer.get(f"/rolloutjobs/{ns}/later")
        assert (status, headers["Location"]) == (302, f"/#/v/{entries[f'{ns}/later']['id']}")
    finally:
        proc.terminate()
        proc.wait(30)

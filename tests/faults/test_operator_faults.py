"""Operator faults on the real control plane: API 500s, lost create answers (the retry meets a
real 409 AlreadyExists), cut watches, SIGKILLs of the operator mid-reconcile, a generator pod
deleted mid-run and the API server restarted mid-run. No child is duplicated; every status
converges.

Not injected: 409 Conflict on kopf's own status PATCH. It kills kopf's timer task for that resource
(kopf 1.45 leaves "Task exception was never retrieved"), so its status stops converging until the
operator restarts; merge patches get no 409 from a real API server, so this stays out of the dose.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from clusterkit import Cluster, Operator, World, operator_identity, wait_for
from kubeproxy import ApiFaults, KubeFaultProxy

NAMES = ["flt-a", "flt-b", "flt-c"]
CHILDREN = [
    ("jobs", "gen"),
    ("configmaps", "spec"),
    ("deployments", "verifier"),
    ("services", "verifier"),
]


@pytest.fixture
def api_proxy(cluster: Cluster) -> Iterator[KubeFaultProxy]:
    context = ssl.create_default_context(cafile=str(cluster.kube.plane.ca))
    proxy = KubeFaultProxy(cluster.kube.plane.server, seed=3, ssl_context=context).start()
    yield proxy
    proxy.stop()


def everything_but_secrets(cluster: Cluster) -> str:
    """Every object of the namespace (but Secrets) and every resource's status, as JSON."""
    ns = cluster.namespace
    paths = [
        f"/api/v1/namespaces/{ns}/{plural}"
        for plural in ("configmaps", "pods", "events", "services")
    ] + [
        f"/apis/apps/v1/namespaces/{ns}/deployments",
        f"/apis/batch/v1/namespaces/{ns}/jobs",
        f"/apis/gymops.dev/v1alpha1/namespaces/{ns}/rolloutjobs",
    ]
    return json.dumps([cluster.raw_list(p) for p in paths])


@pytest.mark.slow
def test_api_faults_and_kills_duplicate_nothing_and_status_converges(
    cluster: Cluster,
    world: World,
    api_proxy: KubeFaultProxy,
    tmp_path: Path,
    operator_env: dict[str, str],
) -> None:
    identity = operator_identity(cluster, tmp_path / "operator.kubeconfig")
    token = yaml.safe_load(identity.read_text())["users"][0]["user"]["token"]
    faulty = api_proxy.write_kubeconfig(tmp_path / "faulty", cluster.namespace, token)
    operator = Operator(faulty, cluster.namespace, tmp_path / "operator.log", operator_env).start()
    api_proxy.faults = ApiFaults(error_5xx_every=25, lost_create_every=5, watch_max_seconds=2.0)
    canary = f"sk-operator-canary-{uuid.uuid4().hex}"
    cluster.secret("openai", {"api-key": canary})
    # Each shard runs for 12 s or more (4 answers of 3 s at concurrency 1) until the kill below:
    # the faults land mid-run, and some generator pod is running when the victim is chosen.
    world.stub.config.latency = 3.0
    try:
        uids = {}
        for name in NAMES:
            body = world.rolloutjob(name, tasks=4, sampling={"numRepeats": 2, "concurrency": 1})
            body["spec"]["policy"]["apiKeySecretRef"] = {"name": "openai", "key": "api-key"}
            uids[name] = cluster.create(body)["metadata"]["uid"]
        wait_for(lambda: cluster.job(f"{NAMES[0]}-gen"), "the first Job", timeout=60)
        operator.kill()  # mid-reconcile: some children made, some not
        operator.start()
        victim = wait_for(
            lambda: next(
                (p["metadata"]["name"] for name in NAMES for p in cluster.pods_of(f"{name}-gen")
                 if p["status"].get("phase") == "Running"),
                None,
            ),
            "a running generator pod",
            timeout=120,
        )  # fmt: skip
        cluster.core.delete_namespaced_pod(victim, cluster.namespace)
        operator.kill()
        cluster.kube.plane.restart_apiserver()
        operator.start()
        world.stub.config.latency = 0.0
        statuses = {
            name: cluster.wait_phase("RolloutJob", name, "Succeeded", timeout=240) for name in NAMES
        }
        api_proxy.faults = ApiFaults()
        for name in NAMES:
            wait_for(
                lambda n=name: "Deployment" not in cluster.children(uids[n]),
                f"the verifier of {name} to be deleted",
                timeout=90,
            )
    except BaseException:
        for name in NAMES:
            print(name, json.dumps(cluster.status("RolloutJob", name))[:1500])
            print(cluster.job(f"{name}-gen"))
        print("\n".join(x for x in operator.log().splitlines() if "Timer" not in x)[-20000:])
        print(cluster.kube.agent.logs(cluster.namespace)[-10000:])
        raise
    finally:
        if operator.proc is not None:
            operator.stop()

    for name in NAMES:
        for plural, suffix in CHILDREN:
            # Exactly once: a handler retry on a stale body once re-created the verifier the
            # timer had deleted when the job finished (now only the reconcile creates children).
            child = f"{name}-{suffix}"
            assert cluster.creations(plural, child) == 1, cluster.history(plural, child)
        children = cluster.children(uids[name])
        assert len(children["Job"]) == 1 and len(children["ConfigMap"]) == 1
        assert "Service" not in children
        resource = cluster.get("RolloutJob", name)
        status = statuses[name]
        assert status["observedGeneration"] == resource["metadata"]["generation"]
        assert status["completionTime"] and status["output"]["manifest"].endswith("/_SUCCESS")
        assert status["progress"]["completed"] + status["progress"]["failed"] == 8
        types = [c["type"] for c in resource["status"]["conditions"]]
        assert len(types) == len(set(types)), types
    # The key never leaves its Secret: not in any other object, event, status or the log.
    assert canary not in everything_but_secrets(cluster) and canary not in operator.log()
    generator = cluster.job(f"{NAMES[0]}-gen")
    assert generator is not None
    env = generator["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
    } in env
    stats = api_proxy.stats
    assert stats["error_5xx"] > 0 and stats["lost_create"] > 0, stats
    assert stats["watch_closed"] + stats["watch_reset"] > 0, stats
    print(f"operator faults injected: {dict(stats)}")

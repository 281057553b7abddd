"""Operator faults: API 500s, lost create answers (the retry meets 409 AlreadyExists), cut watches,
and SIGKILLs of the operator mid-reconcile. No child is duplicated; every status converges.

Not injected: 409 Conflict on kopf's own status PATCH. It kills kopf's timer task for that resource
(kopf 1.45 leaves "Task exception was never retrieved"), so its status stops converging until the
operator restarts; merge patches get no 409 from a real API server, so this stays out of the dose.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import ROOT, Cluster, Operator, rolloutjob, wait_for
from emulator import EmulatorThread
from kubeproxy import ApiFaults, KubeFaultProxy

NAMES = ["flt-a", "flt-b", "flt-c", "flt-d"]


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    thread = EmulatorThread(ROOT / "crds").start()
    yield thread
    thread.stop()


@pytest.fixture
def api_proxy(emulator: EmulatorThread) -> Iterator[KubeFaultProxy]:
    proxy = KubeFaultProxy(emulator.url, seed=3).start()
    yield proxy
    proxy.stop()


def creations(cluster: Cluster) -> Counter[tuple[str, str]]:
    """(plural, name) -> how many times the API created an object of that name."""

    def count(emu: object) -> Counter[tuple[str, str]]:
        return Counter(
            (key.plural, obj["metadata"]["name"])
            for _, key, type_, obj in emu._events  # type: ignore[attr-defined]
            if type_ == "ADDED"
        )

    return cluster.emulator.call(count)  # type: ignore[no-any-return]


def history(cluster: Cluster, plural: str, name: str) -> list[tuple[int, str]]:
    """(resourceVersion, event type) of every write to one object, oldest first."""

    def pick(emu: object) -> list[tuple[int, str]]:
        return [
            (rv, type_)
            for rv, key, type_, obj in emu._events  # type: ignore[attr-defined]
            if key.plural == plural and obj["metadata"]["name"] == name
        ]

    return cluster.emulator.call(pick)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_api_faults_and_kills_duplicate_nothing_and_status_converges(
    emulator: EmulatorThread, api_proxy: KubeFaultProxy, tmp_path: Path, moto_server: str
) -> None:
    namespace = f"faults-{uuid.uuid4().hex[:6]}"
    cluster = Cluster(emulator, emulator.write_kubeconfig(tmp_path / "direct"), namespace)
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    operator = Operator(
        api_proxy.write_kubeconfig(tmp_path / "faulty", namespace),
        namespace,
        tmp_path / "operator.log",
        env,
    ).start()
    api_proxy.faults = ApiFaults(error_5xx_every=25, lost_create_every=5, watch_max_seconds=2.0)
    canary = f"sk-operator-canary-{uuid.uuid4().hex}"
    cluster.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "openai"}, "stringData": {"api-key": canary}}
    )
    policy = {
        "baseURL": "http://vllm:8000/v1",
        "model": "qwen3-8b",
        "apiKeySecretRef": {"name": "openai", "key": "api-key"},
    }
    try:
        uids = {
            name: cluster.create(rolloutjob(name, policy=policy))["metadata"]["uid"]
            for name in NAMES
        }
        time.sleep(0.3)
        operator.kill()  # mid-reconcile: some children made, some not
        operator.start()
        for name in NAMES:
            wait_for(lambda n=name: cluster.job(f"{n}-gen"), f"Job {name}-gen", timeout=60)
            cluster.start_pods(f"{name}-gen")
        time.sleep(0.5)
        operator.kill()
        operator.start()
        for name in NAMES:
            cluster.wait_phase("RolloutJob", name, "Running", timeout=60)
            cluster.complete_job(f"{name}-gen")
        statuses = {
            name: cluster.wait_phase("RolloutJob", name, "Succeeded", timeout=90) for name in NAMES
        }
        api_proxy.faults = ApiFaults()
        for name in NAMES:
            wait_for(
                lambda n=name: "Deployment" not in cluster.children(uids[n]),
                f"the verifier of {name} to be deleted",
                timeout=60,
            )
    except BaseException:
        print(operator.log()[-20000:])
        raise
    finally:
        if operator.proc is not None:
            operator.stop()

    made = creations(cluster)
    for name in NAMES:
        for plural, child in [
            ("jobs", f"{name}-gen"),
            ("configmaps", f"{name}-spec"),
            ("deployments", f"{name}-verifier"),
            ("services", f"{name}-verifier"),
        ]:
            # Exactly once: a handler retry on a stale body once re-created the verifier the
            # timer had deleted when the job finished (fixed by handlers.finished_meanwhile).
            assert made[(plural, child)] == 1, history(cluster, plural, child)
        for plural in ("deployments", "services"):
            assert history(cluster, plural, f"{name}-verifier")[-1][1] == "DELETED"
        children = cluster.children(uids[name])
        assert len(children["Job"]) == 1 and len(children["ConfigMap"]) == 1
        assert "Service" not in children
        resource = cluster.get("RolloutJob", name)
        status = statuses[name]
        assert status["observedGeneration"] == resource["metadata"]["generation"]
        assert status["completionTime"] and status["output"]["manifest"].endswith("/_SUCCESS")
        types = [c["type"] for c in resource["status"]["conditions"]]
        assert len(types) == len(set(types)), types
        assert resource["status"]["phase"] == "Succeeded"
    # The key never leaves its Secret: not in any status, event, child or the operator's log.
    leaked = [
        (key.plural, obj["metadata"]["name"])
        for _, key, _, obj in cluster.emulator.call(lambda emu: list(emu._events))
        if key.plural != "secrets" and canary in json.dumps(obj)
    ]
    assert leaked == [] and canary not in operator.log()
    generator = cluster.job(f"{NAMES[0]}-gen")
    assert generator is not None
    env = generator["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": policy["apiKeySecretRef"]},
    } in env
    stats = api_proxy.stats
    assert stats["error_5xx"] > 0 and stats["lost_create"] > 0, stats
    assert stats["watch_closed"] + stats["watch_reset"] > 0, stats
    print(f"operator faults injected: {dict(stats)}")

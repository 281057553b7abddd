"""Operator scale benchmark on the real control plane: N small RolloutJobs applied at once.

Starts the test control plane and node agent (tests/cluster), the stub model and one shared
built-in math verifier on loopback (each RolloutJob names it by `verifier.url`, so the pods are
the generators only), and `gymops operator` under its own RBAC, talking to the API server through
a counting proxy (tests/faults/kubeproxy.py with no faults). Then it creates N RolloutJobs of one
shard each and waits until every one is Succeeded.

Reported per N: seconds until all Succeeded, the operator's API requests per job (by verb), its
peak RSS and CPU seconds. Targets (issue 11): all succeed, requests per job roughly flat from 10
to 100 jobs, RSS under 200 MB.

    export PYTHONPATH=operator:tests:tests/e2e:tests/faults
    .venv/bin/python bench/cluster_scale.py --jobs 10,100
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from cluster.fixtures import start_cluster, stop_cluster, wait_for_default_account
from clusterkit import Cluster, Operator, World, operator_identity
from kubeproxy import KubeFaultProxy

from gym_operator.testing.loopback import run_in_thread
from gym_operator.testing.stub_model import StubModel, serve_in_thread
from gym_operator.verify.server import VerifierSettings, start_server


def proc_stats(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return peak_kb / 1024, ticks / 100


def run(jobs: int, kube: Any, moto: str, model_url: str, verifier_url: str) -> dict[str, Any]:
    """One round: N RolloutJobs in a fresh namespace, a fresh operator."""
    from kubernetes import client

    core = client.CoreV1Api(kube.api)
    namespace = f"scale-{jobs}-{int(time.time())}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for_default_account(core, namespace)
    cluster = Cluster(kube, namespace)
    bucket = f"scale-{jobs}-{int(time.time())}"
    import boto3

    boto3.client("s3", endpoint_url=moto, region_name="us-east-1").create_bucket(Bucket=bucket)
    world = World(cluster, bucket, moto, model_url, StubModel())
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    identity = operator_identity(cluster, work / "operator.kubeconfig")
    token = yaml.safe_load(identity.read_text())["users"][0]["user"]["token"]
    context = ssl.create_default_context(cafile=str(kube.plane.ca))
    proxy = KubeFaultProxy(kube.plane.server, ssl_context=context).start()
    env = {"AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}  # fmt: skip
    operator = Operator(
        proxy.write_kubeconfig(work / "proxy.kubeconfig", namespace, token),
        namespace, work / "operator.log", env,
    ).start()  # fmt: skip
    assert operator.proc is not None
    pid = operator.proc.pid
    tasks = world.put_tasks("tasks.jsonl", 2)
    before = dict(proxy.stats)
    start = time.monotonic()
    for i in range(jobs):
        body = world.rolloutjob(
            f"scale-{i}", parallelism=1, verifier={"url": verifier_url},
            input={"uri": tasks}, sampling={"numRepeats": 1, "concurrency": 2},
        )  # fmt: skip
        cluster.create(body)
    pending = {f"scale-{i}" for i in range(jobs)}
    while pending:
        phases = {name: cluster.status("RolloutJob", name).get("phase") for name in pending}
        failed = [name for name, phase in phases.items() if phase == "Failed"]
        assert not failed, f"failed: {failed}"
        pending = {name for name, phase in phases.items() if phase != "Succeeded"}
        time.sleep(1)
    seconds = time.monotonic() - start
    peak_mb, cpu = proc_stats(pid)
    operator.stop()
    proxy.stop()
    core.delete_namespace(namespace)
    made = {k: v - before.get(k, 0) for k, v in proxy.stats.items()}
    return {
        "jobs": jobs,
        "seconds_to_all_succeeded": round(seconds, 1),
        "requests_per_job": round(made.get("requests", 0) / jobs, 1),
        "by_verb_per_job": {
            verb: round(made.get(verb, 0) / jobs, 1)
            for verb in ("GET", "POST", "PATCH", "DELETE", "WATCH")
        },
        "operator_peak_rss_mb": round(peak_mb, 1),
        "operator_cpu_seconds": round(cpu, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="10,100", help="Comma-separated job counts.")
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_server.start()
    host, port = moto_server.get_host_and_port()
    moto = f"http://{host}:{port}"
    kube = start_cluster()
    settings = VerifierSettings(builtin="math", workers=1)
    try:
        with (
            serve_in_thread(StubModel()) as model_url,
            run_in_thread(lambda: start_server(settings), name="verifier") as verifier_url,
        ):
            for url in (moto, model_url, verifier_url):
                kube.agent.expose(urlsplit(url).port or 80)
            for jobs in (int(n) for n in args.jobs.split(",")):
                sys.stdout.write(json.dumps(run(jobs, kube, moto, model_url, verifier_url)) + "\n")
                sys.stdout.flush()
    finally:
        stop_cluster(kube)
        moto_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

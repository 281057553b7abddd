"""Security: the API key appears in no artefact of a run; pods built by the controller are hardened
and carry secrets only by reference; the verifier server refuses oversized bodies."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
import zstandard
from aiohttp import web
from faultkit import (
    TinyVerifier,
    app_in_thread,
    gymops,
    job_body,
    task_row,
    wait_or_dump,
    write_spec,
)

from gym_operator import redaction
from gym_operator.api import parse_resource
from gym_operator.controller import builders
from gym_operator.controller.config import OperatorConfig
from gym_operator.testing.stub_model import StubModel, prompt_text
from gym_operator.verify.server import VerifierSettings, start_server

TASKS, REPEATS = 6, 2
ECHO_TASK = 3  # a gateway that echoes the Authorization header in its 401 error body


def readable_text(path: Path) -> str:
    """A file's content as a human or a tool would read it: decompressed, parquet decoded."""
    data = path.read_bytes()
    if path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    elif path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return data.decode("latin-1") + json.dumps(pq.read_table(path).to_pylist(), default=str)
    return data.decode("utf-8", errors="replace")


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file below `root` whose readable content contains `secret`."""
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and secret in readable_text(p)]


def echoing_model(stub: StubModel, seen: list[str]) -> web.Application:
    """The stub model behind a gateway that records the Authorization header and, for one task,
    answers 401 with the header echoed in the error (as some misconfigured gateways do)."""

    @web.middleware
    async def gateway(request: web.Request, handler: Any) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        seen.append(auth)
        body = json.loads(await request.read())
        if f"Task {ECHO_TASK}:" in prompt_text(body):
            return web.json_response({"error": {"message": f"invalid key: {auth}"}}, status=401)
        return await handler(request)

    app = stub.app()
    app.middlewares.append(gateway)
    return app


def test_grep_finds_a_secret_inside_compressed_parts(tmp_path: Path) -> None:
    """Control: the grep below would see a leaked key in a zstd part."""
    part = tmp_path / "part-00000.jsonl.zst"
    part.write_bytes(zstandard.ZstdCompressor().compress(b'{"k": "sk-control-123"}\n'))
    assert files_holding(tmp_path, "sk-control-123") == [str(part)]


@pytest.mark.slow
def test_api_key_appears_in_no_artefact(tmp_path: Path) -> None:
    key = f"sk-gymops-canary-{uuid.uuid4().hex}"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(task_row(i)) + "\n" for i in range(TASKS)))
    out, ds_out, log = tmp_path / "out", tmp_path / "dataset", tmp_path / "logs" / "run.log"
    log.parent.mkdir()
    seen: list[str] = []
    stub = StubModel()
    with (
        app_in_thread(echoing_model(stub, seen)) as model_url,
        app_in_thread(TinyVerifier().app()) as ver_url,
    ):
        body = job_body(str(tasks), str(out), model_url + "/v1", ver_url)
        body["spec"]["sampling"]["numRepeats"] = REPEATS
        spec = write_spec(tmp_path / "job.yaml", body)
        env = {"FAULTS_API_KEY": key}
        generate = gymops("--log-level", "DEBUG", "generate", "--spec", spec, log=log, env=env)
        assert wait_or_dump(generate, 60, log) == 0, log.read_text()[-3000:]
    dataset = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "canary"},
        "spec": {
            "sources": [{"uri": str(out)}],
            "kind": "sft",
            "format": "trl",
            "filters": {"minReward": 0.0},
            "output": {"uri": str(ds_out)},
        },
    }
    (tmp_path / "ds.yaml").write_text(yaml.safe_dump(dataset))
    build = gymops(
        "--log-level", "DEBUG", "build-dataset", "--spec", str(tmp_path / "ds.yaml"), log=log
    )
    assert wait_or_dump(build, 60, log) == 0, log.read_text()[-3000:]

    assert seen and set(seen) == {f"Bearer {key}"}, "the key was not sent, the test proves nothing"
    failures = [
        json.loads(x) for p in out.rglob("failures-*.jsonl") for x in p.read_text().split("\n") if x
    ]
    assert [(f["_ng_task_index"], f["failure"]["status"]) for f in failures] == [
        (ECHO_TASK, 401)
    ] * REPEATS
    assert (ds_out / "README.md").is_file() and (out / "_SUCCESS").is_file()
    assert "DEBUG" in log.read_text()
    assert files_holding(tmp_path / "logs", key) == []
    assert files_holding(out, key) == []
    assert files_holding(ds_out, key) == []


def rollout_variants() -> list[dict[str, Any]]:
    """RolloutJob bodies covering each verifier kind, secrets and a full pod template."""
    base = {
        "input": {"uri": "s3://b/tasks.jsonl"},
        "policy": {
            "baseURL": "http://vllm:8000/v1",
            "model": "m",
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
        },
        "output": {"uri": "s3://b/out/"},
        "s3": {"endpointURL": "http://minio:9000", "credentialsSecretRef": {"name": "s3-creds"}},
        "template": {
            "serviceAccountName": "runner",
            "env": [{"name": "EXTRA", "value": "1"}],
            "resources": {"limits": {"memory": "1Gi"}},
            "annotations": {"a": "b"},
        },
    }
    verifiers = [
        {"builtin": "math"},
        {"image": "nemo/gym-server:1", "port": 9000},
        {"url": "http://v:8000"},
    ]
    return [
        {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "RolloutJob",
            "metadata": {"name": f"rj{i}", "namespace": "ns"},
            "spec": {**base, "verifier": v},
        }
        for i, v in enumerate(verifiers)
    ]


def built_pods() -> list[tuple[str, dict[str, Any]]]:
    """(what, pod template) for every workload the builders make."""
    cfg = OperatorConfig()
    pods = []
    for body in rollout_variants():
        job = parse_resource(body)
        pods.append((f"{job.metadata.name}/generator", builders.build_generator_job(job, cfg)))
        if builders.needs_verifier_server(job):
            pods.append(
                (f"{job.metadata.name}/verifier", builders.build_verifier_deployment(job, cfg))
            )
    dataset = parse_resource(
        {
            "apiVersion": "gymops.dev/v1alpha1",
            "kind": "Dataset",
            "metadata": {"name": "ds", "namespace": "ns"},
            "spec": {
                "sources": [{"rolloutJobRef": "rj0"}],
                "kind": "sft",
                "format": "trl",
                "output": {"uri": "s3://b/ds/"},
                "s3": {"credentialsSecretRef": {"name": "s3-creds"}},
            },
        }
    )
    pods.append(("ds/builder", builders.build_dataset_job(dataset, ["s3://b/out/"], cfg)))
    return [(what, m["spec"]["template"]) for what, m in pods]


PODS = built_pods()


def test_every_workload_kind_is_covered() -> None:
    assert [what for what, _ in PODS] == [
        "rj0/generator",
        "rj0/verifier",
        "rj1/generator",
        "rj1/verifier",
        "rj2/generator",
        "ds/builder",
    ]


@pytest.mark.parametrize(("what", "template"), PODS, ids=[w for w, _ in PODS])
def test_pods_run_non_root_read_only_without_privileges(what: str, template: dict) -> None:
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1) != 0
    assert pod["automountServiceAccountToken"] is False
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(flag)
    assert not [v for v in pod.get("volumes", []) if "hostPath" in v]
    containers = pod["containers"] + pod.get("initContainers", [])
    assert containers
    for container in containers:
        sec = container["securityContext"]
        assert sec["readOnlyRootFilesystem"] is True
        assert sec["allowPrivilegeEscalation"] is False
        assert sec.get("privileged", False) is False
        assert sec["capabilities"] == {"drop": ["ALL"]}
        assert sec.get("runAsUser", 1) != 0


@pytest.mark.parametrize(("what", "template"), PODS, ids=[w for w, _ in PODS])
def test_secrets_are_passed_by_reference_only(what: str, template: dict) -> None:
    for container in template["spec"]["containers"]:
        env = {e["name"]: e for e in container.get("env", [])}
        for name in ("OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if name in env:
                assert "value" not in env[name], (what, name)
                assert "secretKeyRef" in env[name]["valueFrom"]
    if what.endswith("generator"):
        env = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
        assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "openai",
            "key": "api-key",
        }
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3-creds"


@pytest.mark.parametrize("chunked", [False, True])
async def test_verifier_server_refuses_oversized_bodies(chunked: bool) -> None:
    limit = 64 * 1024
    runner, url = await start_server(
        VerifierSettings(builtin="exact_match", workers=1, max_body_bytes=limit)
    )
    small = {
        "responses_create_params": {"input": "q"},
        "expected_answer": "4",
        "response": {
            "output": [
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "4"}],
                }
            ]
        },
    }
    big = {**small, "pad": "x" * (limit + 1)}

    async def chunks(data: bytes):
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/verify", json=small) as ok:
                assert ok.status == 200
                assert (await ok.json())["reward"] == 1.0
            data = json.dumps(big).encode()
            payload = chunks(data) if chunked else data
            headers = {"Content-Type": "application/json"}
            async with session.post(url + "/verify", data=payload, headers=headers) as resp:
                assert resp.status == 413
                assert "exceeds" in (await resp.json())["error"]
    finally:
        await runner.cleanup()


def test_a_key_cut_short_in_an_echoed_error_is_still_redacted() -> None:
    key = "sk-" + "a1b2" * 10
    redaction.register(key)
    redact = redaction.redact_text
    assert redact(f"HTTP 401: bad Bearer {key} here") == "HTTP 401: bad Bearer [redacted] here"
    assert redact(f"HTTP 401: bad Bearer {key[:20]}") == "HTTP 401: bad Bearer [redacted]"
    assert redact(f"body: b'Bearer {key[:20]}'") == "body: b'Bearer [redacted]'"
    assert redact("HTTP 500: nothing secret") == "HTTP 500: nothing secret"

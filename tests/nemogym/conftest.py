"""The real NeMo Gym (PyPI nemo-gym 0.7.0 in .venv-nemogym) serving on loopback, and a model.

NeMo Gym's own config files are resolved by NeMo Gym's own parser (`ng_config.py`, run in its
venv), then each server is started as `gym env start` starts it: `python app.py` in the server's
directory with the resolved config in NEMO_GYM_CONFIG_DICT and its name in NEMO_GYM_CONFIG_PATH.
Only Ray and the per-server uv venvs are left out (one prebuilt venv serves them all).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import model_double
import pytest
from ngkit import NemoGym

from gym_operator.testing.loopback import run_in_thread

REPO = Path(__file__).resolve().parents[2]
NG_PYTHON = REPO / ".venv-nemogym" / "bin" / "python"
CONFIGS = [
    "resources_servers/string_match/configs/string_match.yaml",
    "resources_servers/mcqa/configs/mcqa.yaml",
    "resources_servers/math_with_judge/configs/math_with_judge.yaml",
    "resources_servers/example_single_tool_call/configs/example_single_tool_call.yaml",
    "responses_api_models/openai_model/configs/openai_model.yaml",
]
# A second math_with_judge whose judge model server (NeMo Gym's openai_model) runs, but the
# LLM behind it answers 503 to everything (a judge that is down behind its gateway). NeMo Gym
# retries a judge it cannot connect to for as long as the caller waits, so "down" is a 503 here.
DOWN_JUDGE = """
math_with_down_judge:
  resources_servers:
    math_with_judge:
      entrypoint: app.py
      domain: math
      should_use_judge: true
      judge_responses_create_params: {{input: []}}
      judge_model_server: {{type: responses_api_models, name: judge_model}}
judge_model:
  responses_api_models:
    openai_model:
      entrypoint: app.py
      openai_base_url: {model_url}
      openai_api_key: none
      openai_model: {judge}
"""
STARTED = (
    "string_match",
    "mcqa",
    "math_with_judge",
    "example_single_tool_call",
    "math_with_down_judge",
    "judge_model",
    "policy_model",
    "string_match_simple_agent",
)
COLLECTION = "string_match_environment_server"
"""The environment server NeMo Gym's rollout collection posts each /run to (it relays to
string_match_simple_agent). Its server class still asks for Ray, so it starts a local Ray
instance (about 15 s): started only for the tests that run `ng_collect_rollouts`."""
START_SECONDS = 240.0


@pytest.fixture(scope="session")
def model_url() -> Iterator[str]:
    """The scripted model (see model_double) on loopback; its base URL ends in /v1."""
    with run_in_thread(model_double.start, name="model-double") as url:
        yield url


def _resolve(workdir: Path, model_url: str) -> dict:
    extra = workdir / "down_judge.yaml"
    extra.write_text(DOWN_JUDGE.format(model_url=model_url, judge=model_double.DOWN), "utf-8")
    request = {
        "config_paths": [*CONFIGS, str(extra)],
        "overrides": {
            "policy_base_url": model_url,
            "policy_api_key": "none",
            "policy_model_name": model_double.COMPLETE,
        },
    }
    out = workdir / "resolved.json"
    subprocess.run(
        [
            str(NG_PYTHON),
            str(Path(__file__).with_name("ng_config.py")),
            json.dumps(request),
            str(out),
        ],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    return json.loads(out.read_text(encoding="utf-8"))


def _start(server: dict, config_yaml: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        NEMO_GYM_CONFIG_DICT=config_yaml,
        NEMO_GYM_CONFIG_PATH=server["name"],
        PYTHONPATH=server["dir"],
        NO_PROXY="127.0.0.1,localhost",
    )
    with log.open("wb") as fh:
        return subprocess.Popen(
            [str(NG_PYTHON), server["entrypoint"]],
            cwd=server["dir"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not healthy within {START_SECONDS:g}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _serving(servers: list[dict], config_yaml: str, workdir: Path) -> Iterator[dict[str, str]]:
    """Start the servers as `gym env start` does, wait until healthy; yields their URLs."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for server in servers:
            procs[server["name"]] = _start(server, config_yaml, workdir / f"{server['name']}.log")
        urls = {s["name"]: f"http://{s['host']}:{s['port']}" for s in servers}
        for name, proc in procs.items():
            _wait_healthy(urls[name], proc, workdir / f"{name}.log")
        yield urls
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


@pytest.fixture(scope="session")
def nemo_gym(model_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NemoGym]:
    """NeMo Gym's string_match, mcqa, math_with_judge (twice), example_single_tool_call, and
    for agent mode its simple_agent over string_match with its openai_model as policy."""
    if not NG_PYTHON.exists():
        pytest.fail(f"{NG_PYTHON} is missing: run `make venv-nemogym`")
    workdir = tmp_path_factory.mktemp("nemo-gym")
    resolved = _resolve(workdir, model_url)
    servers = [s for s in resolved["servers"] if s["name"] in (*STARTED, COLLECTION)]
    config_yaml = resolved["config_yaml"]
    later = [s for s in servers if s["name"] == COLLECTION]
    with _serving([s for s in servers if s not in later], config_yaml, workdir) as urls:
        yield NemoGym(urls, config_yaml, workdir, {s["name"]: s for s in later})


@pytest.fixture(scope="session")
def ng_collection(nemo_gym: NemoGym) -> Iterator[NemoGym]:
    """The NeMo Gym servers plus the environment server its rollout collection needs."""
    server = nemo_gym.later[COLLECTION]
    with _serving([server], nemo_gym.config_yaml, nemo_gym.workdir) as urls:
        nemo_gym.urls.update(urls)
        yield nemo_gym

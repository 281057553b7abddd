"""Run inside the NeMo Gym venv: the entrypoint of a NeMo Gym resource server "image".

What a user's container image of one NeMo Gym resource server does at start, for the node agent
of the test cluster (tests/cluster), which runs images as local commands: resolve the server's
own config file with NeMo Gym's parser, the server on 127.0.0.1:PORT (the node agent bridges the
pod's container port to the pod's loopback), then replace this process with the server's
unmodified `python app.py`, started as `gym env start` starts it (the resolved config in
NEMO_GYM_CONFIG_DICT, the server's name in NEMO_GYM_CONFIG_PATH, its directory as cwd).

Arguments: the server's top-level config name, its config file (relative to the NeMo Gym
package, e.g. resources_servers/string_match/configs/string_match.yaml) and the port; optionally
a JSON object of config overrides (merged over the defaults below, e.g. the policy model's URL and
`should_use_judge`), then the names of further servers of the resolved config to run in the same
pod first, each until healthy (e.g. `policy_model`, the judge's NeMo Gym model server); they end
when the server ends.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import yaml
from nemo_gym import PARENT_DIR
from ng_config import resolve

MODEL_CONFIG = "responses_api_models/openai_model/configs/openai_model.yaml"
# The config files of NeMo Gym's resource servers also define an agent that names a policy
# model; the parser wants that model defined. A resource server never calls it.
UNUSED_POLICY = {
    "policy_base_url": "http://127.0.0.1:9/v1",
    "policy_api_key": "unused",
    "policy_model_name": "unused",
}


def _server_path(config_file: str, name: str) -> tuple[str, str]:
    """(kind, implementation) of server `name` in its config file."""
    block = yaml.safe_load((PARENT_DIR / config_file).read_text(encoding="utf-8"))[name]
    kind = next(iter(block))
    return kind, next(iter(block[kind]))


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, nested mappings key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = _merged(out[key], value)
        out[key] = value
    return out


def _env(server: dict[str, Any], config_yaml: str) -> dict[str, str]:
    """The environment `gym env start` gives a server process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        NEMO_GYM_CONFIG_DICT=config_yaml,
        NEMO_GYM_CONFIG_PATH=server["name"],
        PYTHONPATH=server["dir"],
    )
    return env


def _end_with_parent() -> None:
    """In the child: SIGTERM when its parent (the server this process becomes) ends."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _start_healthy(server: dict[str, Any], config_yaml: str, timeout: float = 180.0) -> None:
    """Start a companion server in this pod, ending with it; return once its /health answers."""
    proc = subprocess.Popen(
        [sys.executable, server["entrypoint"]],
        cwd=server["dir"],
        env=_env(server, config_yaml),
        preexec_fn=_end_with_parent,
    )
    url = f"http://{server['host']}:{server['port']}/health"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{server['name']} exited {proc.returncode} at start")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{server['name']} not healthy within {timeout:g}s")


def main() -> None:
    """Resolve the config, start the companions, exec the server."""
    name, config_file, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    kind, impl = _server_path(config_file, name)
    where = {name: {kind: {impl: {"host": "127.0.0.1", "port": port}}}}
    overrides = _merged({**UNUSED_POLICY, **where}, extra)
    resolved = resolve({"config_paths": [config_file, MODEL_CONFIG], "overrides": overrides})
    by_name = {s["name"]: s for s in resolved["servers"]}
    for companion in sys.argv[5:]:
        _start_healthy(by_name[companion], resolved["config_yaml"])
    server = by_name[name]
    os.chdir(server["dir"])
    env = _env(server, resolved["config_yaml"])
    os.execve(sys.executable, [sys.executable, server["entrypoint"]], env)


if __name__ == "__main__":
    main()

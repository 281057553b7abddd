"""Run inside the NeMo Gym venv: the entrypoint of a NeMo Gym resource server "image".

What a user's container image of one NeMo Gym resource server does at start, for the node agent
of the test cluster (tests/cluster), which runs images as local commands: resolve the server's
own config file with NeMo Gym's parser, the server on 127.0.0.1:PORT (the node agent bridges the
pod's container port to the pod's loopback), then replace this process with the server's
unmodified `python app.py`, started as `gym env start` starts it (the resolved config in
NEMO_GYM_CONFIG_DICT, the server's name in NEMO_GYM_CONFIG_PATH, its directory as cwd).

Arguments: the server's top-level config name, its config file (relative to the NeMo Gym
package, e.g. resources_servers/string_match/configs/string_match.yaml) and the port.
"""

import os
import sys

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


def main() -> None:
    """Resolve the config and exec the server."""
    name, config_file, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kind, impl = _server_path(config_file, name)
    where = {name: {kind: {impl: {"host": "127.0.0.1", "port": port}}}}
    request = {"config_paths": [config_file, MODEL_CONFIG], "overrides": {**UNUSED_POLICY, **where}}
    resolved = resolve(request)
    (server,) = [s for s in resolved["servers"] if s["name"] == name]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        NEMO_GYM_CONFIG_DICT=resolved["config_yaml"],
        NEMO_GYM_CONFIG_PATH=name,
        PYTHONPATH=server["dir"],
    )
    os.chdir(server["dir"])
    os.execve(sys.executable, [sys.executable, server["entrypoint"]], env)


if __name__ == "__main__":
    main()

"""Run inside the NeMo Gym venv: resolve a NeMo Gym config as `gym env start` does.

Arguments: a JSON object {"config_paths": [...], "overrides": {...}} and the file to write.
NeMo Gym's own parser merges the YAML files and the overrides and gives every server a host and
a free port. Written: the resolved config (the YAML every server process reads from
NEMO_GYM_CONFIG_DICT) and, per server instance, its top-level name, directory, entrypoint, host
and port: what `gym env start` uses to launch `python <entrypoint>` in that directory (NeMo Gym
prints to stdout, hence the file).
"""

import json
import sys
from pathlib import Path

from nemo_gym.cli.env import _resolve_server_dir
from nemo_gym.global_config import GlobalConfigDictParser, GlobalConfigDictParserConfig
from omegaconf import DictConfig, OmegaConf


def resolve(request: dict) -> dict:
    """The resolved config YAML and the servers to launch (see the module docstring)."""
    initial = OmegaConf.create({"config_paths": request["config_paths"], **request["overrides"]})
    parse = GlobalConfigDictParserConfig(
        initial_global_config_dict=initial, skip_load_from_cli=True, skip_load_from_dotenv=True
    )
    config = GlobalConfigDictParser().parse(parse)
    servers = []
    for name, block in config.items():
        if not isinstance(block, DictConfig):
            continue
        kind = next(iter(block), None)
        inner = block.get(kind) if kind else None
        if not isinstance(inner, DictConfig):
            continue
        impl = next(iter(inner), None)
        server = inner.get(impl) if impl else None
        if not isinstance(server, DictConfig) or "entrypoint" not in server:
            continue
        directory = _resolve_server_dir(Path(kind, impl))
        servers.append(
            {
                "name": name,
                "kind": kind,
                "dir": str(directory),
                "entrypoint": server.entrypoint,
                "host": server.host,
                "port": server.port,
            }
        )
    return {"config_yaml": OmegaConf.to_yaml(config), "servers": servers}


def main() -> None:
    """Resolve and write the JSON file."""
    result = resolve(json.loads(sys.argv[1]))
    Path(sys.argv[2]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()

"""What the node agent reads out of a pod spec: each container's command, env, mounts, ports."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

Manifest = dict[str, Any]
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """A container cannot be configured (a missing Secret or key): CreateContainerConfigError."""


class ImageError(Exception):
    """No local command for the container's image: the agent reports ErrImagePull."""


Image = dict[str, list[str]]
"""What an image holds, locally: a command name -> the argv that runs it; "" is the entrypoint."""


def repository(image: str) -> str:
    """The image name without its tag or digest."""
    name = image.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def argv(container: Manifest, images: dict[str, Image]) -> list[str]:
    """The container's command line, as its image would run it: `command` (else the image's
    entrypoint) looked up in the image's table, then `args`."""
    image = container.get("image", "")
    table = images.get(repository(image))
    if table is None:
        raise ImageError(f'Back-off pulling image "{image}": not in the node agent\'s image table')
    command = list(container.get("command") or table.get("", []))
    if not command:
        raise ImageError(f"image {image!r} has no entrypoint and the container no command")
    if command[0] in table:
        command = [*table[command[0]], *command[1:]]
    return command + list(container.get("args") or [])


def field_value(pod: Manifest, path: str) -> str:
    """A fieldRef of the downward API."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = FIELD.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path}")


Lookup = Callable[[str, str], dict[str, str] | None]
"""(kind 'Secret' or 'ConfigMap', name) -> its data as text, or None when absent."""


def _ref(lookup: Lookup, kind: str, ref: Manifest) -> str | None:
    data = lookup(kind, ref["name"])
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        what = (
            f"{kind.lower()} {ref['name']!r}"
            if data is None
            else f"key {ref['key']!r} in {kind} {ref['name']!r}"
        )
        raise ConfigError(f"{what} not found")
    return data[ref["key"]]


def environment(container: Manifest, pod: Manifest, lookup: Lookup) -> dict[str, str]:
    """The container's environment from envFrom and env (value, secretKeyRef,
    configMapKeyRef, fieldRef), with $(VAR) references expanded as the kubelet does."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                data = lookup(kind, source[key]["name"])
                if data is None and not source[key].get("optional"):
                    raise ConfigError(f"{kind.lower()} {source[key]['name']!r} not found")
                prefix = source.get("prefix", "")
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), var["value"])
            continue
        source = var.get("valueFrom") or {}
        value: str | None = ""
        if "secretKeyRef" in source:
            value = _ref(lookup, "Secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _ref(lookup, "ConfigMap", source["configMapKeyRef"])
        elif "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        if value is not None:
            env[var["name"]] = value
    return env


Token = Callable[[Manifest], str]
"""A serviceAccountToken projection -> a token of the pod's ServiceAccount (TokenRequest)."""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _source_files(kind: str, source: Manifest, name: str, lookup: Lookup) -> dict[str, str]:
    data = lookup(kind, name)
    if data is None:
        if source.get("optional"):
            return {}
        raise ConfigError(f"{kind.lower()} {name!r} not found")
    items = source.get("items") or [{"key": k, "path": k} for k in data]
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


def _projected(pod: Manifest, volume: Manifest, lookup: Lookup, token: Token) -> dict[str, str]:
    files: dict[str, str] = {}
    for source in volume["projected"].get("sources") or []:
        if "serviceAccountToken" in source:
            files[source["serviceAccountToken"]["path"]] = token(source["serviceAccountToken"])
        elif "configMap" in source:
            cm = source["configMap"]
            files.update(_source_files("ConfigMap", cm, cm["name"], lookup))
        elif "secret" in source:
            files.update(
                _source_files("Secret", source["secret"], source["secret"]["name"], lookup)
            )
        elif "downwardAPI" in source:
            for item in source["downwardAPI"].get("items") or []:
                files[item["path"]] = field_value(pod, item["fieldRef"]["fieldPath"])
    return files


def write_volumes(pod: Manifest, root: Path, lookup: Lookup, token: Token) -> dict[str, Path]:
    """ConfigMap, Secret and projected volumes as files, emptyDirs as directories, under `root`."""
    out: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        path = root / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        out[volume["name"]] = path
        files: dict[str, str] = {}
        if "configMap" in volume:
            cm = volume["configMap"]
            files = _source_files("ConfigMap", cm, cm["name"], lookup)
        elif "secret" in volume:
            files = _source_files(
                "Secret", volume["secret"], volume["secret"]["secretName"], lookup
            )
        elif "projected" in volume:
            files = _projected(pod, volume, lookup, token)
        for name, text in files.items():
            _write(path / name, text)
    return out


def port_number(container: Manifest, port: int | str) -> int:
    """A port by number or by the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ConfigError(f"container {container['name']!r} has no port named {port!r}")


def resolved_probe(container: Manifest) -> Manifest | None:
    """The readiness probe with named ports resolved."""
    probe = container.get("readinessProbe")
    if probe is None:
        return None
    probe = dict(probe)
    for key in ("tcpSocket", "httpGet"):
        if key in probe:
            probe[key] = {**probe[key], "port": port_number(container, probe[key]["port"])}
    return probe


def decode(data: dict[str, str] | None, binary: bool) -> dict[str, str] | None:
    """A Secret's base64 data as text (ConfigMap data is text already)."""
    if data is None or not binary:
        return data
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}

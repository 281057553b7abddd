"""The index saved on local disk between runs of the viewer, keyed by the output prefix.

One `.npz` file of the columns plus its JSON description (parts, string tables, and which shard
manifests it was built from). A cache is used only while every shard it knew still has the same
manifest start time and every part it indexed is still committed; otherwise it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from gym_operator.viewer.index import DTYPES, PartRef, RolloutIndex, Tables

log = logging.getLogger(__name__)
FORMAT = 1


def default_dir() -> Path:
    """$GYMOPS_VIEWER_CACHE, else $XDG_CACHE_HOME/gymops/viewer, else ~/.cache/gymops/viewer."""
    if os.environ.get("GYMOPS_VIEWER_CACHE"):
        return Path(os.environ["GYMOPS_VIEWER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gymops" / "viewer"


def cache_file(directory: Path, uri: str) -> Path:
    """Where the index of `uri` is kept."""
    return directory / f"{hashlib.sha256(uri.encode()).hexdigest()[:32]}.npz"


def save(path: Path, index: RolloutIndex, identity: dict[str, Any]) -> None:
    """Write the index atomically (a crash leaves the old cache or none)."""
    columns, parts, _ = index.snapshot()
    meta = {
        "format": FORMAT,
        "identity": identity,
        "parts": [[p.shard, p.seq, p.name, p.kind, p.rows] for p in parts],
        "task_types": index.tables.task_types,
        "failures": index.tables.failures,
        "examples": index.tables.examples,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    with tmp.open("wb") as fh:
        np.savez(fh, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **columns)
    os.replace(tmp, path)


def load(path: Path) -> tuple[RolloutIndex, dict[str, Any]] | None:
    """The cached index and its identity, or None when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            meta = json.loads(data["meta"].tobytes())
            if meta.get("format") != FORMAT:
                return None
            columns = {name: data[name].astype(dtype, copy=False) for name, dtype in DTYPES.items()}
    except (OSError, ValueError, KeyError) as exc:
        log.warning("viewer cache %s unreadable (%s); rebuilding", path, exc)
        return None
    index = RolloutIndex()
    index.tables = Tables(meta["task_types"], meta["failures"], meta["examples"])
    for shard, seq, name, kind, rows in meta["parts"]:
        index.parts.append(PartRef(shard, seq, name, kind, rows))
    index.restore(columns)
    return index, meta["identity"]

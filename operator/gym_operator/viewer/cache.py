"""The index saved on local disk between runs of the viewer, keyed by the output prefix.

One file: an 8-byte length, a JSON header (parts, string tables, which shard manifests it was
built from, where each column lies) and the columns' raw bytes, 64-byte aligned. Loading maps
the columns (numpy memmap): nothing is copied, so a viewer of a million rows opens at once. A
cache is used only while every shard it knew still has the same manifest start time and every
part it indexed is still committed; otherwise it is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from gym_operator.viewer.index import DTYPES, PartRef, RolloutIndex, Tables

log = logging.getLogger(__name__)
FORMAT = 2
ALIGN = 64


def default_dir() -> Path:
    """$GYMOPS_VIEWER_CACHE, else $XDG_CACHE_HOME/gymops/viewer, else ~/.cache/gymops/viewer."""
    if os.environ.get("GYMOPS_VIEWER_CACHE"):
        return Path(os.environ["GYMOPS_VIEWER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gymops" / "viewer"


def cache_file(directory: Path, uri: str) -> Path:
    """Where the index of `uri` is kept."""
    return directory / f"{hashlib.sha256(uri.encode()).hexdigest()[:32]}.index"


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def save(
    path: Path, index: RolloutIndex, identity: dict[str, Any], overview: dict[str, Any]
) -> None:
    """Write the index, and the overview numbers of exactly these columns, atomically (a crash
    leaves the old cache or none)."""
    columns, parts, _ = index.snapshot()
    layout, offset = {}, 0
    for name in DTYPES:
        layout[name] = [offset, len(columns[name])]
        offset = _aligned(offset + columns[name].nbytes)
    header = {
        "format": FORMAT,
        "identity": identity,
        "parts": [[p.shard, p.seq, p.name, p.kind, p.rows] for p in parts],
        "task_types": index.tables.task_types,
        "failures": index.tables.failures,
        "examples": index.tables.examples,
        "columns": layout,
        "overview": overview,
    }
    head = json.dumps(header).encode()
    base = _aligned(8 + len(head))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<Q", len(head)) + head)
        for name in DTYPES:
            fh.seek(base + layout[name][0])
            fh.write(np.ascontiguousarray(columns[name]).tobytes())
    os.replace(tmp, path)


def load(path: Path) -> tuple[RolloutIndex, dict[str, Any], dict[str, Any]] | None:
    """The cached index (columns mapped, not read), its identity and its overview numbers; None
    when absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        if header.get("format") != FORMAT:
            return None
        base = _aligned(8 + size)
        columns = {}
        for name, dtype in DTYPES.items():
            start, count = header["columns"][name]
            columns[name] = (
                np.memmap(path, dtype=dtype, mode="r", offset=base + start, shape=(count,))
                if count
                else np.empty(0, dtype)
            )
    except (OSError, ValueError, KeyError, struct.error) as exc:
        log.warning("viewer cache %s unreadable (%s); rebuilding", path, exc)
        return None
    index = RolloutIndex()
    index.tables = Tables(header["task_types"], header["failures"], header["examples"])
    for shard, seq, name, kind, rows in header["parts"]:
        index.parts.append(PartRef(shard, seq, name, kind, rows))
    index.restore(columns)
    return index, header["identity"], header.get("overview") or {}

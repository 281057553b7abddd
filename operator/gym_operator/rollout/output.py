"""Reading a job's committed output back: rollout, failure and bad-input rows of every shard.

Only files named in a shard manifest are read; anything else under the prefix (an upload cut off
by a crash) does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gym_operator.rollout.parts import read_part_rows
from gym_operator.storage import layout
from gym_operator.storage.manifest import read_all_manifests
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI


@dataclass
class CommittedOutput:
    """Every committed row of a job, by kind."""

    rollouts: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def iter_committed(storage: Storage, prefix: StorageURI) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, row) for every committed row; kind is rollout, failure or error."""
    for manifest in read_all_manifests(storage, prefix):
        directory = layout.shard_dir(prefix, manifest.shard)
        for part in manifest.parts:
            for kind, name in (
                ("rollout", part.rollouts_file),
                ("failure", part.failures_file),
                ("error", part.errors_file),
            ):
                if name:
                    for row in read_part_rows(name, storage.read_bytes(directory.join(name))):
                        yield kind, row


def read_committed(storage: Storage, prefix: StorageURI) -> CommittedOutput:
    """All committed rows in memory (small jobs and tests)."""
    out = CommittedOutput()
    lists = {"rollout": out.rollouts, "failure": out.failures, "error": out.errors}
    for kind, row in iter_committed(storage, prefix):
        lists[kind].append(row)
    return out

"""A RolloutJob output prefix as the viewer sees it: manifests, the index, rows fetched on demand.

A background thread reads the shard manifests, indexes each part committed since it last looked,
and saves the index to the local cache; once `_SUCCESS` exists and every part is indexed it
looks only every IDLE_SECONDS (a rerun of the prefix starts the index afresh). Pages read their
rows from the part files again (a few decoded parts are kept).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    JobRecord,
    ShardManifest,
    SuccessMarker,
    read_all_manifests,
    read_job_record,
    read_success,
)
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI
from gym_operator.viewer import cache, stats
from gym_operator.viewer.index import ERROR, FAILURE, ROLLOUT, PartRef, RolloutIndex, index_lines
from gym_operator.viewer.partfiles import parse_row, part_lines

log = logging.getLogger(__name__)
DECODED_PARTS = 8
SAVE_EVERY_SECONDS = 30.0
IDLE_SECONDS = 30.0


class JobView:
    """One RolloutJob output prefix."""

    kind = "job"

    def __init__(self, storage: Storage, prefix: StorageURI, cache_dir: Path | None) -> None:
        self.storage = storage
        self.prefix = prefix
        self.cache_path = cache.cache_file(cache_dir, str(prefix)) if cache_dir else None
        self.index = RolloutIndex()
        self.record: JobRecord | None = None
        self.success: SuccessMarker | None = None
        self.manifests: list[ShardManifest] = []
        self.parts_known = 0
        self.refreshed_at = 0.0
        self.error: str | None = None
        self._indexed: set[tuple[int, int, int]] = set()
        self._decoded: OrderedDict[int, list[bytes]] = OrderedDict()
        self._decoded_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_at = 0.0
        self._dirty = False
        self._derived: dict[str, tuple[int, Any]] = {}
        self._seen_identity: dict[str, Any] | None = None
        self.generation = 0
        self._first_pass = False
        """Counts restarts of the index (a rerun of the prefix); cached answers carry it."""
        self._derived_lock = threading.Lock()

    # -- the watcher -------------------------------------------------------------------------

    def start(self, interval: float = 2.0) -> None:
        """Index in the background, following the job while it runs."""
        self.load_cache()
        self._thread = threading.Thread(
            target=self._watch, args=(interval,), name="viewer-index", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the watcher (the index stays usable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def indexing(self) -> bool:
        """Whether parts known to be committed are not indexed yet."""
        return not self._first_pass or len(self.index.parts) < self.parts_known

    def _watch(self, interval: float) -> None:
        if len(self.index):
            self.overview()  # a cached index: the first page need not wait for its numbers
        while not self._stop.is_set():
            try:
                new = self.refresh()
                self.error = None
            except Exception as exc:  # a page shows it; the next look may succeed
                log.exception("indexing %s failed", self.prefix)
                self.error = f"{type(exc).__name__}: {exc}"
                new = 0
            finished = self.success is not None and not new and not self.error
            self._save(force=finished)
            self._first_pass = self._first_pass or self.error is None  # after the save
            # A finished job changes only when rerun: look again, but seldom.
            self._stop.wait(max(interval, IDLE_SECONDS) if finished else interval)

    def refresh(self) -> int:
        """Read the manifests and index the parts not indexed yet; how many parts were new."""
        self.record = read_job_record(self.storage, self.prefix)
        self.success = read_success(self.storage, self.prefix)
        self.manifests = read_all_manifests(self.storage, self.prefix)
        self._forget_if_rerun()
        todo = [
            ref for ref in self._committed() if (ref.shard, ref.seq, ref.kind) not in self._indexed
        ]
        self.parts_known = len(self._indexed) + len(todo)
        self.refreshed_at = time.time()
        for ref in todo:
            if self._stop.is_set():
                break
            self._index_part(ref)
        return len(todo)

    def _forget_if_rerun(self) -> None:
        """Start the index afresh when the prefix was rerun (`--restart`, another spec)."""
        identity = self._identity()
        seen = self._seen_identity
        self._seen_identity = identity
        if seen is None or not self._indexed:
            return
        rerun = seen["digest"] != identity["digest"] or any(
            identity["shards"].get(shard, started) != started
            for shard, started in seen["shards"].items()
        )
        if rerun:
            log.info("%s was rerun; indexing it afresh", self.prefix)
            self.index = RolloutIndex()
            self._indexed = set()
            self.generation += 1
            with self._decoded_lock:
                self._decoded.clear()
            with self._derived_lock:
                self._derived.clear()

    def _committed(self) -> list[PartRef]:
        refs = []
        for manifest in self.manifests:
            for entry in manifest.parts:
                for kind, name, rows in (
                    (ROLLOUT, entry.rollouts_file, entry.rollouts),
                    (FAILURE, entry.failures_file, entry.failures),
                    (ERROR, entry.errors_file, entry.errors),
                ):
                    if name:
                        refs.append(PartRef(manifest.shard, entry.seq, name, kind, rows))
        return refs

    def _index_part(self, ref: PartRef) -> None:
        lines = self._read_lines(ref)
        part_id = self.index.next_part_id()
        columns = index_lines(part_id, ref.kind, lines, self.index.tables)
        self.index.add_part(PartRef(ref.shard, ref.seq, ref.name, ref.kind, len(lines)), columns)
        self._indexed.add((ref.shard, ref.seq, ref.kind))
        self._dirty = True

    # -- the cache ---------------------------------------------------------------------------

    def _identity(self) -> dict[str, Any]:
        return {
            "digest": self.record.digest if self.record else None,
            "shards": {str(m.shard): m.started_at for m in self.manifests},
        }

    def load_cache(self) -> bool:
        """Take the cached index when it belongs to the run now under the prefix."""
        if self.cache_path is None:
            return False
        loaded = cache.load(self.cache_path)
        if loaded is None:
            return False
        index, identity, numbers = loaded
        self.record = read_job_record(self.storage, self.prefix)
        self.manifests = read_all_manifests(self.storage, self.prefix)
        current = self._identity()
        committed = {(r.shard, r.seq, r.kind, r.name) for r in self._committed()}
        same_shards = all(
            current["shards"].get(shard) == started for shard, started in identity["shards"].items()
        )
        if identity.get("digest") != current["digest"] or not same_shards:
            log.info("viewer cache of %s is for another run; rebuilding", self.prefix)
            return False
        if any((p.shard, p.seq, p.kind, p.name) not in committed for p in index.parts):
            return False
        self.index = index
        self._indexed = {(p.shard, p.seq, p.kind) for p in index.parts}
        if numbers:  # the first page shows these without computing anything
            self._derived["overview"] = (index.version, numbers)
        log.info("viewer cache of %s: %d rows, %d parts", self.prefix, len(index), len(index.parts))
        return True

    def _save(self, force: bool) -> None:
        if self.cache_path is None or not self._dirty:
            return
        if not force and time.monotonic() - self._saved_at < SAVE_EVERY_SECONDS:
            return
        try:
            numbers, version = self.overview()
            if version == self.index.version:  # only this thread adds parts
                cache.save(self.cache_path, self.index, self._identity(), numbers)
        except OSError as exc:
            log.warning("cannot save the viewer cache %s: %s", self.cache_path, exc)
        self._saved_at = time.monotonic()
        self._dirty = False

    # -- rows --------------------------------------------------------------------------------

    def _read_lines(self, ref: PartRef) -> list[bytes]:
        uri = layout.shard_dir(self.prefix, ref.shard).join(ref.name)
        return part_lines(ref.name, self.storage.read_bytes(uri))

    def read_part(self, part_id: int) -> list[bytes]:
        """The raw rows of one indexed part, read afresh (not kept)."""
        return self._read_lines(self.index.part(part_id))

    def part_rows(self, part_id: int) -> list[bytes]:
        """The raw rows of one indexed part (a few recently used parts are kept decoded)."""
        with self._decoded_lock:
            lines = self._decoded.get(part_id)
            if lines is not None:
                self._decoded.move_to_end(part_id)
                return lines
        lines = self._read_lines(self.index.part(part_id))
        with self._decoded_lock:
            self._decoded[part_id] = lines
            while len(self._decoded) > DECODED_PARTS:
                self._decoded.popitem(last=False)
        return lines

    def row(self, part_id: int, line: int) -> dict[str, Any]:
        """One row by its place."""
        return parse_row(self.part_rows(part_id)[line])

    def _derive(self, name: str, compute: Any) -> tuple[Any, int]:
        """A figure computed from the columns, kept until the index grows."""
        columns, _, version = self.index.snapshot()
        with self._derived_lock:
            kept = self._derived.get(name)
            if kept is None or kept[0] != version:
                kept = self._derived[name] = (version, compute(columns, version))
            return kept[1], version

    def overview(self) -> tuple[dict[str, Any], int]:
        """The overview numbers (see stats.overview) and the index version they are for."""
        threshold = self.pass_threshold()

        def compute(columns: dict[str, Any], version: int) -> dict[str, Any]:
            types = stats.row_types(columns)
            self._derived["types"] = (version, types)
            return stats.overview(columns, self.index.tables, threshold, types)

        return self._derive("overview", compute)

    def row_types(self) -> Any:
        """Each row's task type code (see stats.row_types)."""
        return self._derive("types", lambda columns, _: stats.row_types(columns))[0]

    def pass_threshold(self) -> float:
        """reward.passThreshold of the job's spec (1.0 when unknown)."""
        spec = self.record.spec if self.record else {}
        reward = spec.get("reward") or {}
        return float(reward.get("passThreshold", reward.get("pass_threshold", 1.0)))

    def status(self) -> dict[str, Any]:
        """Where the job and the index stand."""
        expected = sum(m.expected_rollouts or 0 for m in self.manifests) or None
        digest = self.record.digest if self.record else None
        mismatched = [m.shard for m in self.manifests if digest and m.job_digest != digest]
        return {
            "uri": str(self.prefix),
            "digest": digest,
            "success": self.success is not None,
            "shards": len(self.manifests),
            "shardsFinished": sum(m.finished for m in self.manifests),
            "shardsOtherDigest": mismatched,
            "numShards": self.record.num_shards if self.record else None,
            "numRepeats": self.record.num_repeats if self.record else None,
            "expectedRollouts": expected,
            "committed": sum(m.completed + m.failed for m in self.manifests),
            "inputErrors": sum(m.input_errors for m in self.manifests),
            "partsIndexed": len(self.index.parts),
            "partsKnown": max(self.parts_known, len(self.index.parts)),
            "indexing": self.indexing,
            "refreshedAt": self.refreshed_at,
            "error": self.error,
            "spec": self.record.spec if self.record else {},
        }

"""What one commit costs as a shard's parts add up: manifest bytes written and time per commit.

Commits `--parts` one-row parts on file:// (a secret registered, so every write is redacted as in
a real run) twice in the same run: with segments (storage.manifest.SEGMENT_PARTS entries sealed
per segment file) and, as the baseline, with sealing off, which is the whole manifest rewritten
on every commit. Reported: the manifest's size and the mean time of the last 100 commits.

    .venv/bin/python bench/manifest_commit.py --parts 2000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from gym_operator import redaction
from gym_operator.storage import layout
from gym_operator.storage import manifest as manifests
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri


def commit_many(parts: int, seal_every: int) -> tuple[int, float]:
    """Manifest bytes after `parts` commits, and the mean seconds of the last 100 commits."""
    manifests.SEGMENT_PARTS = seal_every
    storage = Storage()
    with tempfile.TemporaryDirectory(prefix="gymops-bench-") as tmp:
        prefix = parse_uri(str(Path(tmp) / "out"))
        current = manifests.ShardManifest(shard=0, num_shards=1, job_digest="d", num_repeats=4)
        times = []
        for seq in range(parts):
            started = time.perf_counter()
            name = layout.part_name(seq, ".jsonl.zst")
            entry = manifests.PartEntry(seq=seq, rollouts_file=name, rollouts=1000)
            slots = SlotSet([(seq * 1000, seq * 1000 + 1000)])
            data = json.dumps({"seq": seq}).encode()
            committed = manifests.commit_part(storage, prefix, current, {name: data}, entry, slots)
            committed.count_rollout(1.0, True, False)
            manifests.write_manifest(storage, prefix, committed)
            current = committed
            times.append(time.perf_counter() - started)
        size = len(storage.read_bytes(layout.manifest_uri(prefix, 0)))
    return size, sum(times[-100:]) / 100


def main() -> None:
    """Segments, then the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=2000)
    args = parser.parse_args()
    redaction.register("sk-bench-secret-0123456789abcdef")
    sealed = manifests.SEGMENT_PARTS
    for label, every in ((f"segments of {sealed}", sealed), ("whole (baseline)", 10**12)):
        size, mean = commit_many(args.parts, every)
        print(
            f"{label:<18} after {args.parts} parts: manifest {size / 1024:8.1f} KiB, "
            f"last 100 commits {mean * 1000:6.2f} ms each",
            flush=True,
        )


if __name__ == "__main__":
    main()

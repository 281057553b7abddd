"""Rollout rows and committed parts in the generator's layout, for benchmarks, tests and demos.

`rollout_row` makes one row of DESIGN section 5; `write_rollouts` commits rows as parts of a
RolloutJob output prefix through the storage manifest API (job record, parts, manifests,
success marker), exactly what the dataset builder reads.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from typing import Any

import zstandard

from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    JobRecord,
    PartEntry,
    ShardManifest,
    commit_part,
    write_job_record,
    write_manifest,
    write_success,
)
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri


def rollout_row(
    task_index: int,
    rollout_index: int,
    text: str,
    reward: float | None,
    *,
    prompt: str | list[dict[str, Any]] | None = None,
    truncated: bool = False,
    tool_calls: list[dict[str, Any]] | None = None,
    **task: Any,
) -> dict[str, Any]:
    """One rollout row; `task` holds extra task fields (expected_answer, task_type, ...)."""
    output: list[dict[str, Any]] = []
    if text:
        output.append(
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text}],
            }
        )
    for call in tool_calls or []:
        output.append({"type": "function_call", **call})
    response: dict[str, Any] = {
        "output": output,
        "usage": {"input_tokens": 10, "output_tokens": max(1, len(text) // 4)},
        "status": "incomplete" if truncated else "completed",
    }
    if truncated:
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    row: dict[str, Any] = {
        "responses_create_params": {
            "input": prompt
            if prompt is not None
            else [{"role": "user", "content": f"Question {task_index}?"}]
        },
        **task,
        "response": response,
        "_ng_task_index": task_index,
        "_ng_rollout_index": rollout_index,
    }
    if reward is not None:
        row["reward"] = reward
    return row


def encode_part(rows: Iterable[dict[str, Any]], suffix: str) -> bytes:
    """Rows as a part file with the given suffix (.jsonl.zst, .jsonl.gz, .jsonl, .parquet)."""
    rows = list(rows)
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = list(dict.fromkeys(k for r in rows for k in r))
        json_cols = [n for n in names if any(isinstance(r.get(n), dict | list) for r in rows)]
        table = pa.table(
            {
                n: [json.dumps(r[n]) if n in json_cols and n in r else r.get(n) for r in rows]
                for n in names
            }
        )
        table = table.replace_schema_metadata({b"gymops.json_columns": json.dumps(json_cols)})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    if suffix.endswith(".zst"):
        return zstandard.ZstdCompressor(level=1).compress(data)
    if suffix.endswith(".gz"):
        return gzip.compress(data, compresslevel=1)
    return data


def start_job(
    storage: Storage,
    uri: str,
    *,
    num_shards: int,
    num_repeats: int,
    digest: str = "digest-1",
    spec: dict[str, Any] | None = None,
) -> list[ShardManifest]:
    """Write `_job.json` and return an empty manifest per shard."""
    prefix = parse_uri(uri)
    write_job_record(
        storage,
        prefix,
        JobRecord(digest=digest, num_shards=num_shards, num_repeats=num_repeats, spec=spec or {}),
    )
    return [
        ShardManifest(shard=s, num_shards=num_shards, job_digest=digest, num_repeats=num_repeats)
        for s in range(num_shards)
    ]


def commit_rows(
    storage: Storage,
    uri: str,
    manifest: ShardManifest,
    rows: list[dict[str, Any]],
    *,
    failures: list[dict[str, Any]] | None = None,
    suffix: str = ".jsonl.zst",
) -> ShardManifest:
    """Commit one part (rollouts plus failure rows) and write the new manifest."""
    prefix = parse_uri(uri)
    seq = manifest.next_seq()
    files: dict[str, bytes] = {}
    entry = PartEntry(seq=seq, rollouts=len(rows), failures=len(failures or []))
    if rows:
        entry.rollouts_file = layout.part_name(seq, suffix)
        files[entry.rollouts_file] = encode_part(rows, suffix)
    if failures:
        entry.failures_file = layout.failures_name(seq)
        files[entry.failures_file] = encode_part(failures, ".jsonl")
    slots = SlotSet()
    for row in [*rows, *(failures or [])]:
        task, rollout = row.get("_ng_task_index"), row.get("_ng_rollout_index")
        if isinstance(task, int) and isinstance(rollout, int):
            slots.add(task * manifest.num_repeats + rollout)
    committed = commit_part(storage, prefix, manifest, files, entry, slots)
    committed.completed += len(rows)
    committed.failed += len(failures or [])
    write_manifest(storage, prefix, committed)
    return committed


def finish_job(storage: Storage, uri: str, manifests: list[ShardManifest]) -> None:
    """Mark every shard finished and write `_SUCCESS`."""
    prefix = parse_uri(uri)
    for manifest in manifests:
        manifest.finished = True
        write_manifest(storage, prefix, manifest)
    write_success(storage, prefix, manifests)


def write_rollouts(
    storage: Storage,
    uri: str,
    rows: list[dict[str, Any]],
    *,
    num_shards: int = 1,
    num_repeats: int = 4,
    part_rows: int = 1000,
    suffix: str = ".jsonl.zst",
    spec: dict[str, Any] | None = None,
) -> None:
    """Commit rows as a finished job: shard = task index mod num_shards, parts of part_rows."""
    manifests = start_job(storage, uri, num_shards=num_shards, num_repeats=num_repeats, spec=spec)
    by_shard: dict[int, list[dict[str, Any]]] = {s: [] for s in range(num_shards)}
    for row in rows:
        by_shard[int(row.get("_ng_task_index", 0)) % num_shards].append(row)
    for shard, shard_rows in by_shard.items():
        for start in range(0, len(shard_rows), part_rows):
            manifests[shard] = commit_rows(
                storage, uri, manifests[shard], shard_rows[start : start + part_rows], suffix=suffix
            )
    finish_job(storage, uri, manifests)

"""Encoding a part's rows: JSONL (zstd, gzip or plain) or Parquet, and reading them back.

Every part (rollouts, failures, bad rows) is encoded here, so this is where secrets are redacted
(`gym_operator.redaction`), whatever field of a row an endpoint echoed them into.

Parquet keeps `reward`, `_ng_task_index` and `_ng_rollout_index` as native columns. Any other
column holding an object, a list or mixed types is stored as JSON text and named in the file's
schema metadata under `gymops.json_columns`; `read_part_rows` decodes them again.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import zstandard

from gym_operator import redaction
from gym_operator.storage import layout

JSON_COLUMNS_KEY = b"gymops.json_columns"
_NATIVE = {"reward": float, "_ng_task_index": int, "_ng_rollout_index": int}


def part_suffix(fmt: str, compression: str) -> str:
    """File suffix of a part for an output format and compression."""
    return layout.PART_SUFFIXES["parquet" if fmt == "parquet" else compression]


def encode_jsonl(rows: list[dict[str, Any]]) -> bytes:
    """Rows as JSON lines, with the process's registered secrets redacted."""
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    return redaction.redact_text(text).encode()


def encode_part(rows: list[dict[str, Any]], fmt: str, compression: str) -> bytes:
    """The bytes of a part file."""
    if fmt == "parquet":
        return _encode_parquet(redaction.redact_value(rows))
    data = encode_jsonl(rows)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6)
    return data


def _column_is_json(values: list[Any]) -> bool:
    kinds = {type(v) for v in values if v is not None}
    if kinds & {dict, list}:
        return True
    if kinds <= {int, float} or len(kinds) <= 1:
        return False
    return True


def _encode_parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns: dict[str, list[Any]] = {}
    json_columns = []
    for name in names:
        values = [row.get(name) for row in rows]
        if name not in _NATIVE and _column_is_json(values):
            json_columns.append(name)
            values = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        columns[name] = values
    table = pa.table(columns)
    table = table.replace_schema_metadata({JSON_COLUMNS_KEY: json.dumps(json_columns).encode()})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def read_part_rows(name: str, data: bytes) -> list[dict[str, Any]]:
    """Decode a part file (by its name's suffix) back into rows."""
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        meta = table.schema.metadata or {}
        json_columns = json.loads(meta.get(JSON_COLUMNS_KEY, b"[]"))
        rows = table.to_pylist()
        for row in rows:
            for col in json_columns:
                if row.get(col) is not None:
                    row[col] = json.loads(row[col])
        return rows
    if name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    elif name.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines() if line.strip()]

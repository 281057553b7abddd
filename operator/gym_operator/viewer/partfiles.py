"""A committed part file as a list of raw rows (JSONL lines or Parquet rows), addressed by position.

Blank lines are skipped, so position `i` is the same row for the index builder and for the page
that later fetches it. Parquet rows are re-encoded as JSON lines so both kinds search alike.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import zstandard

JSON_COLUMNS_KEY = b"gymops.json_columns"


def part_lines(name: str, data: bytes) -> list[bytes]:
    """The rows of a part file, one JSON document (bytes) each."""
    if name.endswith(".parquet"):
        return [json.dumps(row, ensure_ascii=False).encode() for row in _parquet_rows(data)]
    if name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    elif name.endswith(".gz"):
        data = gzip.decompress(data)
    return [line for line in data.split(b"\n") if line.strip()]


def _parquet_rows(data: bytes) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    json_columns = json.loads((table.schema.metadata or {}).get(JSON_COLUMNS_KEY, b"[]"))
    rows = table.to_pylist()
    for row in rows:
        for column in json_columns:
            if isinstance(row.get(column), str):
                row[column] = json.loads(row[column])
    return rows


def parse_row(line: bytes) -> dict[str, Any]:
    """One row; a line that is not a JSON object becomes {"_unreadable": excerpt}."""
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        return {"_unreadable": line[:500].decode("utf-8", "replace")}
    return row

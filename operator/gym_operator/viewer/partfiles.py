"""A committed part file as a list of raw rows (JSONL lines or Parquet rows), addressed by position.

Blank lines are skipped, so position `i` is the same row for the index builder and for the page
that later fetches it. Parquet rows are re-encoded as JSON lines so both kinds search alike.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import zstandard

from gym_operator.rollout.parts import read_part_rows


def part_lines(name: str, data: bytes) -> list[bytes]:
    """The rows of a part file, one JSON document (bytes) each."""
    if name.endswith(".parquet"):
        return [json.dumps(row, ensure_ascii=False).encode() for row in read_part_rows(name, data)]
    if name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    elif name.endswith(".gz"):
        data = gzip.decompress(data)
    return [line for line in data.split(b"\n") if line.strip()]


def parse_row(line: bytes) -> dict[str, Any]:
    """One row; a line that is not a JSON object becomes {"_unreadable": excerpt}."""
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        return {"_unreadable": line[:500].decode("utf-8", "replace")}
    return row

"""Writing one split as numbered files of at most `rowsPerFile` rows (JSONL or Parquet).

Files are named `<split>-00000.<ext>` under the output prefix. Every row is first made to fit the
export's schema (schemas.py), so all rows and files have the same columns and types:

- Parquet files are written with that Arrow schema, never one inferred from the rows.
- JSONL loaders (`datasets`) type the whole dataset from the first block of the first file, and
  a list that is empty in every row there becomes a list of nulls that later rows cannot be cast
  to. So the first file of each split is held back until it holds, for every list of the schema
  that any row fills, a row that fills it; such rows are moved to its top (a row of the first
  file that fills nothing new moves to the current file in exchange, so counts are unchanged).
  The first file is written as soon as it is complete in this sense, else at the end.

Memory is bounded by `rowsPerFile`: the current file's rows (JSONL as encoded bytes; Parquet as
Arrow tables of CHUNK_ROWS rows), plus the held first file of a JSONL split.
"""

from __future__ import annotations

import io
import json
from collections import deque
from typing import Any

import pyarrow as pa

from gym_operator.data import schemas
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI

CHUNK_ROWS = 4096


def file_name(split: str, number: int, file_format: str) -> str:
    """e.g. train-00003.parquet"""
    return f"{split}-{number:05d}.{file_format}"


class _FirstFile:
    """The held first JSONL file: rows that fill a list first (top), then the others."""

    def __init__(self) -> None:
        self.top: list[bytes] = []
        self.rest: deque[bytes] = deque()
        self.paths: set[str] = set()

    def __len__(self) -> int:
        return len(self.top) + len(self.rest)

    def add(self, line: bytes, filled: set[str]) -> None:
        if filled - self.paths:
            self.top.append(line)
            self.paths |= filled
        else:
            self.rest.append(line)

    def data(self) -> bytes:
        return b"".join(self.top) + b"".join(self.rest)


class SplitWriter:
    """Appends rows to one split and rolls over to a new file every `rows_per_file` rows."""

    def __init__(
        self,
        storage: Storage,
        prefix: StorageURI,
        split: str,
        file_format: str,
        rows_per_file: int,
        schema: pa.Schema | None,
    ) -> None:
        if schema is None and file_format == "parquet":
            raise ValueError("parquet needs a schema")
        self.storage = storage
        self.prefix = prefix
        self.split = split
        self.file_format = file_format
        self.rows_per_file = rows_per_file
        self.schema = schema
        self.rows = 0
        self._written: dict[int, StorageURI] = {}
        self._number = 0
        self._jsonl = io.BytesIO()
        self._records: list[dict[str, Any]] = []
        self._tables: list[pa.Table] = []
        self._pending = 0
        self._all_paths = set(schemas.list_paths(schema)) if schema is not None else set()
        self._first: _FirstFile | None = _FirstFile() if self._all_paths else None
        self._first_held = False

    @property
    def files(self) -> list[StorageURI]:
        """The files written so far, by number."""
        return [self._written[n] for n in sorted(self._written)]

    def write(self, row: dict[str, Any]) -> None:
        """Add one row."""
        if self.schema is not None:
            row = schemas.conform(row, self.schema)
        self.rows += 1
        if self.file_format == "parquet":
            self._add_record(row)
        else:
            self._add_line(row)

    def close(self) -> list[StorageURI]:
        """Write the held first file and the last file; the files written, by number."""
        if self._first is not None and (self._first_held or len(self._first)):
            self._write_first()
        if self._pending:
            self._flush()
        return self.files

    def _add_record(self, row: dict[str, Any]) -> None:
        self._records.append(row)
        if len(self._records) >= CHUNK_ROWS:
            self._tables.append(pa.Table.from_pylist(self._records, schema=self.schema))
            self._records = []
        self._pending += 1
        if self._pending >= self.rows_per_file:
            self._flush()

    def _add_line(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False).encode() + b"\n"
        first = self._first
        if first is None or self.schema is None:
            self._append(line)
            return
        filled = schemas.filled_paths(row, self.schema)
        if not self._first_held:
            first.add(line, filled)
            if len(first) >= self.rows_per_file:
                self._number = 1
                self._first_held = True
                self._release_first_if_complete()
            return
        if filled - first.paths and first.rest:
            first.add(line, filled)
            line = first.rest.pop()
            self._release_first_if_complete()
        self._append(line)

    def _release_first_if_complete(self) -> None:
        first = self._first
        if first is not None and self._all_paths <= first.paths:
            self._write_first()

    def _write_first(self) -> None:
        assert self._first is not None
        uri = self.prefix.join(file_name(self.split, 0, self.file_format))
        self.storage.write_bytes(uri, self._first.data())
        self._written[0] = uri
        self._first = None
        self._first_held = False
        self._number = max(self._number, 1)

    def _append(self, line: bytes) -> None:
        self._jsonl.write(line)
        self._pending += 1
        if self._pending >= self.rows_per_file:
            self._flush()

    def _flush(self) -> None:
        uri = self.prefix.join(file_name(self.split, self._number, self.file_format))
        if self.file_format == "parquet":
            data = self._parquet_bytes()
        else:
            data = self._jsonl.getvalue()
            self._jsonl = io.BytesIO()
        self.storage.write_bytes(uri, data)
        self._written[self._number] = uri
        self._number += 1
        self._pending = 0

    def _parquet_bytes(self) -> bytes:
        import pyarrow.parquet as pq

        if self._records:
            self._tables.append(pa.Table.from_pylist(self._records, schema=self.schema))
        table = pa.concat_tables(self._tables)
        self._records, self._tables = [], []
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()

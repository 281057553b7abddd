"""Writing one split as numbered files of at most `rowsPerFile` rows (JSONL or Parquet).

Files are named `<split>-00000.<ext>` under the output prefix. One file's rows are buffered and
written atomically when it is full, so memory is bounded by `rowsPerFile`: JSONL as encoded bytes;
Parquet as Arrow tables of CHUNK_ROWS rows (columnar, far smaller than the row dicts), combined
with permissive schema promotion when the file is written, so a struct field that only some rows
have (a message's `tool_calls`) becomes a null in the others.
"""

from __future__ import annotations

import io
import json
from typing import Any

from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI

CHUNK_ROWS = 4096


def file_name(split: str, number: int, file_format: str) -> str:
    """e.g. train-00003.parquet"""
    return f"{split}-{number:05d}.{file_format}"


class SplitWriter:
    """Appends rows to one split and rolls over to a new file every `rows_per_file` rows."""

    def __init__(
        self,
        storage: Storage,
        prefix: StorageURI,
        split: str,
        file_format: str,
        rows_per_file: int,
    ) -> None:
        self.storage = storage
        self.prefix = prefix
        self.split = split
        self.file_format = file_format
        self.rows_per_file = rows_per_file
        self.files: list[StorageURI] = []
        self.rows = 0
        self._jsonl = io.BytesIO()
        self._records: list[dict[str, Any]] = []
        self._tables: list[Any] = []
        self._pending = 0

    def write(self, row: dict[str, Any]) -> None:
        """Add one row."""
        if self.file_format == "parquet":
            self._records.append(row)
            if len(self._records) >= CHUNK_ROWS:
                self._tables.append(_table(self._records))
                self._records = []
        else:
            self._jsonl.write(json.dumps(row, ensure_ascii=False).encode())
            self._jsonl.write(b"\n")
        self._pending += 1
        self.rows += 1
        if self._pending >= self.rows_per_file:
            self._flush()

    def close(self) -> list[StorageURI]:
        """Write the last file; the files written, in order."""
        if self._pending:
            self._flush()
        return self.files

    def _flush(self) -> None:
        uri = self.prefix.join(file_name(self.split, len(self.files), self.file_format))
        if self.file_format == "parquet":
            if self._records:
                self._tables.append(_table(self._records))
            data = _parquet_bytes(self._tables)
            self._records, self._tables = [], []
        else:
            data = self._jsonl.getvalue()
            self._jsonl = io.BytesIO()
        self.storage.write_bytes(uri, data)
        self.files.append(uri)
        self._pending = 0


def _table(records: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    return pa.Table.from_pylist(records)


def _parquet_bytes(tables: list[Any]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.concat_tables(tables, promote_options="permissive")
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()

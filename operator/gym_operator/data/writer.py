"""Writing one split as numbered files of at most `rowsPerFile` rows (JSONL or Parquet).

Files are named `<split>-00000.<ext>` under the output prefix. Every row is first made to fit the
export's schema (schemas.py), so all rows and files have the same columns and types:

- Parquet files are written with that Arrow schema, never one inferred from the rows.
- JSONL carries no types, and its loaders infer them from each file's first rows, so each file
  starts with rows that fill every list it has, and after the last file a file that lacks a list
  the split fills gets such a row by exchange with another file (exemplars.py).

Memory is bounded by `rowsPerFile`: the current file's rows (JSONL as encoded bytes; Parquet as
Arrow tables of CHUNK_ROWS rows).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pyarrow as pa

from gym_operator.data import exemplars, schemas
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
        self.files: list[StorageURI] = []
        self.unrepaired: list[tuple[str, str]] = []
        self._lines: list[bytes] = []
        self._paths: list[exemplars.Paths] = []
        self._counts: dict[int, Counter[str]] = {}
        self._records: list[dict[str, Any]] = []
        self._tables: list[pa.Table] = []
        self._pending = 0
        self._conform = schemas.row_conformer(schema) if schema is not None else None

    def write(self, row: dict[str, Any]) -> None:
        """Add one row."""
        filled: set[str] = set()
        if self._conform is not None:
            row, filled = self._conform(row)
        self.rows += 1
        self._pending += 1
        if self.file_format == "parquet":
            self._records.append(row)
            if len(self._records) >= CHUNK_ROWS:
                self._tables.append(schemas.table(self._records, self.schema))
                self._records = []
        else:
            self._lines.append(json.dumps(row, ensure_ascii=False).encode() + b"\n")
            if self.schema is not None:
                self._paths.append(_interned(filled))
        if self._pending >= self.rows_per_file:
            self._flush()

    def close(self) -> list[StorageURI]:
        """Write the last file (and give JSONL files the lists they lack); the files, in order."""
        if self._pending:
            self._flush()
        if self.file_format == "jsonl" and self.schema is not None and len(self.files) > 1:
            repair = exemplars.Repair(
                self.storage, self.schema, dict(enumerate(self.files)), self._counts
            )
            repair.run()
            self.unrepaired = repair.unrepaired
        return self.files

    def _flush(self) -> None:
        number = len(self.files)
        uri = self.prefix.join(file_name(self.split, number, self.file_format))
        if self.file_format == "parquet":
            data = self._parquet_bytes()
        else:
            if self._paths:
                self._lines, self._paths = exemplars.exemplars_first(self._lines, self._paths)
                self._counts[number] = Counter(p for f in self._paths for p in f)
            data = b"".join(self._lines)
            self._lines, self._paths = [], []
        self.storage.write_bytes(uri, data)
        self.files.append(uri)
        self._pending = 0

    def _parquet_bytes(self) -> bytes:
        import pyarrow.parquet as pq

        assert self.schema is not None
        if self._records:
            self._tables.append(schemas.table(self._records, self.schema))
        table = pa.concat_tables(self._tables, promote_options="permissive")
        self._records, self._tables = [], []
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return sink.getvalue()


_INTERNED: dict[frozenset[str], frozenset[str]] = {}


def _interned(paths: set[str]) -> frozenset[str]:
    """One shared frozenset per distinct set of paths (there are few), to keep memory flat."""
    key = frozenset(paths)
    return _INTERNED.setdefault(key, key)

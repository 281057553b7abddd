"""A Dataset prefix as the viewer sees it: `_DATASET.json`, the card, and rows paged per split.

JSONL files are paged through an index of line offsets built on first use (8 bytes a row) and
ranged reads; Parquet files through their row groups. Rows are shown as conversations: a DPO
pair as chosen beside rejected, whatever the export format's field names.
"""

from __future__ import annotations

import io
import json
import threading
from array import array
from typing import Any

from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.uri import StorageURI, parse_uri
from gym_operator.viewer.conversation import item_turn

RESULT_FILE = "_DATASET.json"
CARD_FILE = "README.md"
SPLITS = ("train", "validation")


class DatasetView:
    """One Dataset output prefix."""

    kind = "dataset"

    def __init__(self, storage: Storage, prefix: StorageURI) -> None:
        self.storage = storage
        self.prefix = prefix
        self._offsets: dict[str, array[int]] = {}
        self._parquet_rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def summary(self) -> dict[str, Any]:
        """`_DATASET.json` plus the card's text."""
        result = json.loads(self.storage.read_bytes(self.prefix.join(RESULT_FILE)))
        try:
            card = self.storage.read_bytes(self.prefix.join(CARD_FILE)).decode()
        except ObjectNotFound:
            card = ""
        return {**result, "uri": str(self.prefix), "cardText": card}

    def file(self, name: str) -> bytes:
        """A file of the prefix by bare name (the card's images)."""
        if "/" in name or name.startswith("."):
            raise ObjectNotFound(name)
        return self.storage.read_bytes(self.prefix.join(name))

    def split_files(self, split: str) -> list[StorageURI]:
        """The data files of one split, in order."""
        files = json.loads(self.storage.read_bytes(self.prefix.join(RESULT_FILE)))["files"]
        return [parse_uri(f) for f in files if parse_uri(f).name.startswith(f"{split}-")]

    def rows(self, split: str, offset: int, limit: int) -> dict[str, Any]:
        """A page of one split: each row raw and as conversation sides."""
        if split not in SPLITS:
            raise ValueError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
        total, found, skip = 0, [], offset
        for uri in self.split_files(split):
            count = self._count(uri)
            total += count
            if skip >= count:
                skip -= count
                continue
            if len(found) < limit:
                found.extend(self._read(uri, skip, limit - len(found)))
            skip = 0
        rows = [{"number": offset + i, "row": r, "view": sides(r)} for i, r in enumerate(found)]
        return {"split": split, "total": total, "offset": offset, "rows": rows}

    def _count(self, uri: StorageURI) -> int:
        if uri.key.endswith(".parquet"):
            with self._lock:
                if str(uri) not in self._parquet_rows:
                    self._parquet_rows[str(uri)] = _parquet(self.storage, uri).metadata.num_rows
                return self._parquet_rows[str(uri)]
        return len(self._line_offsets(uri)) - 1

    def _line_offsets(self, uri: StorageURI) -> array[int]:
        with self._lock:
            found = self._offsets.get(str(uri))
            if found is not None:
                return found
            offsets, position = array("Q", [0]), 0
            for chunk in self.storage.iter_chunks(uri):
                start = 0
                while (hit := chunk.find(b"\n", start)) >= 0:
                    offsets.append(position + hit + 1)
                    start = hit + 1
                position += len(chunk)
            if offsets[-1] != position:
                offsets.append(position)
            self._offsets[str(uri)] = offsets
            return offsets

    def _read(self, uri: StorageURI, start: int, count: int) -> list[dict[str, Any]]:
        if uri.key.endswith(".parquet"):
            return [
                _decode_json_columns(r) for r in _parquet_slice(self.storage, uri, start, count)
            ]
        offsets = self._line_offsets(uri)
        end = min(start + count, len(offsets) - 1)
        data = read_range(self.storage, uri, offsets[start], offsets[end])
        return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def read_range(storage: Storage, uri: StorageURI, start: int, end: int) -> bytes:
    """Bytes [start, end) of an object."""
    if end <= start:
        return b""
    if uri.scheme == "file":
        with open(uri.key, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)
    answer = storage.s3.get_object(Bucket=uri.bucket, Key=uri.key, Range=f"bytes={start}-{end - 1}")
    return answer["Body"].read()  # type: ignore[no-any-return]


def _parquet(storage: Storage, uri: StorageURI) -> Any:
    """A Parquet file opened for random access (a local path; an S3 object read whole)."""
    import pyarrow.parquet as pq

    if uri.scheme == "file":
        return pq.ParquetFile(uri.key)
    return pq.ParquetFile(io.BytesIO(storage.read_bytes(uri)))


def _parquet_slice(storage: Storage, uri: StorageURI, start: int, count: int) -> list[Any]:
    """Rows [start, start + count) of a Parquet file, reading only the row groups that hold them."""
    parquet = _parquet(storage, uri)
    groups, first, offset = [], None, 0
    for number in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(number).num_rows
        if offset + size > start and offset < start + count:
            groups.append(number)
            first = offset if first is None else first
        offset += size
    if not groups:
        return []
    table = parquet.read_row_groups(groups)
    return table.slice(start - (first or 0), count).to_pylist()  # type: ignore[no-any-return]


def _decode_json_columns(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                row[key] = json.loads(value)
            except ValueError:
                pass
    return row


def _messages(value: Any) -> list[dict[str, Any]]:
    """A prompt or completion (message list, one message, or text) as turns."""
    if isinstance(value, str):
        return [{"role": "user", "kind": "message", "text": value}]
    if isinstance(value, dict):
        value = [value]
    out: list[dict[str, Any]] = []
    for message in value or []:
        turn = item_turn(message, "user")
        if turn and (
            turn["text"] or not isinstance(message, dict) or not message.get("tool_calls")
        ):
            out.append(turn)
        if isinstance(message, dict):
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                out.append(
                    {
                        "role": "assistant",
                        "kind": "tool_call",
                        "name": function.get("name"),
                        "text": str(function.get("arguments") or ""),
                    }
                )
    return out


def _completion(value: Any) -> list[dict[str, Any]]:
    turns = _messages(value)
    if isinstance(value, str):
        turns[0]["role"] = "assistant"
    return turns


def sides(row: dict[str, Any]) -> dict[str, Any]:
    """{kind, prompt, columns}: the conversation(s) of a dataset row, side by side."""
    prompt = row.get("prompt", row.get("context", row.get("input")))
    if "chosen" in row and "rejected" in row:
        columns = [
            {"label": "chosen", "turns": _completion(row["chosen"])},
            {"label": "rejected", "turns": _completion(row["rejected"])},
        ]
        return {"kind": "pair", "prompt": _messages(prompt), "columns": columns}
    if isinstance(row.get("completions"), list):
        ranked = sorted(row["completions"], key=lambda c: c.get("rank", 0))
        names = {0: "chosen", 1: "rejected"} if len(ranked) == 2 else {}
        columns = [
            {
                "label": f"rank {c.get('rank')} ({names.get(i, '')})".replace(" ()", ""),
                "turns": _completion(c.get("completion")),
            }
            for i, c in enumerate(ranked)
        ]
        return {"kind": "pair", "prompt": _messages(prompt), "columns": columns}
    for key in ("completion", "output"):
        if key in row:
            columns = [{"label": key, "turns": _completion(row[key])}]
            return {"kind": "single", "prompt": _messages(prompt), "columns": columns}
    if "messages" in row:
        return {
            "kind": "single",
            "prompt": [],
            "columns": [{"label": "messages", "turns": _messages(row["messages"])}],
        }
    return {
        "kind": "prompt",
        "prompt": _messages(prompt) if prompt is not None else [],
        "columns": [],
    }

"""Streaming the task JSONL of a RolloutJob into good tasks and bad-input rows, one shard's share.

Rules (documented in docs and relied on by resume):
- The task index is the 0-based line number in the input file, counting every line (empty lines
  included), so it never depends on which rows are valid. A row's own `id` is kept as a field but
  does not decide its index (ids may be strings, repeated or missing).
- Shard `s` of `N` owns the lines with `index % N == s`; all repeats of a task live in its shard.
- `limit` counts non-empty lines from the top of the file, before sharding.
- Empty (or whitespace-only) lines are skipped; a UTF-8 BOM on the first line and CRLF endings are
  tolerated. Everything else that is not a JSON object with a `responses_create_params` object, or
  is longer than `maxRowBytes`, becomes a BadRow (its line is 1-based in the errors file).
- Lines are split in linear time, and a line longer than `maxRowBytes` is never held whole in
  memory (only its length is counted), whether or not it ends with a newline.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI

BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
EXCERPT_CHARS = 200
COUNT_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the row limit: only its length was kept, never its bytes."""

    size: int

    def strip(self) -> OversizedLine:
        """Never blank (mirrors bytes.strip for the empty-line check)."""
        return self


@dataclass(frozen=True)
class Task:
    """One valid task row and its index."""

    index: int
    row: dict[str, Any]


@dataclass(frozen=True)
class BadRow:
    """One input line that cannot be a task; becomes a row of the errors file."""

    index: int
    reason: str
    excerpt: str

    def as_row(self) -> dict[str, Any]:
        """The errors-file row: 1-based line, reason, excerpt."""
        return {
            "line": self.index + 1,
            "_ng_task_index": self.index,
            "reason": self.reason,
            "excerpt": self.excerpt,
        }


def parse_line(index: int, raw: bytes | OversizedLine, max_row_bytes: int) -> Task | BadRow:
    """Turn one raw line (without its newline) into a Task or a BadRow."""
    if isinstance(raw, OversizedLine):
        return BadRow(index, f"row is {raw.size} bytes, above maxRowBytes {max_row_bytes}", "")
    if index == 0 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    raw = raw.rstrip(b"\r")
    if len(raw) > max_row_bytes:
        return BadRow(index, f"row is {len(raw)} bytes, above maxRowBytes {max_row_bytes}", "")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRow(index, f"not UTF-8: {exc.reason} at byte {exc.start}", _excerpt(raw))
    try:
        row = json.loads(text)
    except ValueError as exc:
        return BadRow(index, f"malformed JSON: {exc}", text[:EXCERPT_CHARS])
    except RecursionError:
        return BadRow(index, "malformed JSON: nested too deeply", text[:EXCERPT_CHARS])
    if not isinstance(row, dict):
        return BadRow(index, f"not a JSON object but {type(row).__name__}", text[:EXCERPT_CHARS])
    if _SURROGATE_ESCAPE.search(text) and not _encodable(row):
        return BadRow(index, "not valid Unicode: a lone surrogate escape", text[:EXCERPT_CHARS])
    params = row.get("responses_create_params")
    if not isinstance(params, dict):
        reason = (
            "no responses_create_params"
            if params is None
            else "responses_create_params is not an object"
        )
        return BadRow(index, reason, text[:EXCERPT_CHARS])
    if not params.get("input"):
        return BadRow(index, "responses_create_params.input is empty", text[:EXCERPT_CHARS])
    problem = _input_problem(params["input"])
    if problem:
        return BadRow(index, f"responses_create_params.{problem}", text[:EXCERPT_CHARS])
    return Task(index, row)


def _input_problem(items: Any) -> str | None:
    """What makes `input` unusable (text, or a list of item objects whose content is text or a
    list of parts), or None."""
    if isinstance(items, str):
        return None
    if not isinstance(items, list):
        return f"input is {type(items).__name__}, not text or a list"
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return f"input[{i}] is {type(item).__name__}, not an object"
        content = item.get("content")
        if content is not None and not isinstance(content, str | list):
            return f"input[{i}].content is {type(content).__name__}, not text or a list"
    return None


def iter_bounded_lines(chunks: Iterable[bytes], max_bytes: int) -> Iterator[bytes | OversizedLine]:
    """Split a byte stream into lines (without the newline) in time linear in its size.

    A line is kept in memory only up to `max_bytes` (plus its CR and one chunk); past that only
    its length is counted and it comes out as an OversizedLine, so memory stays bounded however
    long a line without a newline is. The last line may lack a newline.
    """
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        for piece in pieces[:-1]:
            yield _line(pending, size + len(piece), piece, max_bytes)
            pending, size = [], 0
        size += len(pieces[-1])
        if size <= max_bytes + 1:
            pending.append(pieces[-1])
        else:
            pending = []
    if size:
        yield _line(pending, size, b"", max_bytes)


def _line(pending: list[bytes], size: int, last: bytes, max_bytes: int) -> bytes | OversizedLine:
    """The whole line, or OversizedLine when it is longer than max_bytes (+1 for a CR)."""
    if size > max_bytes + 1:
        return OversizedLine(size)
    return b"".join([*pending, last])


def iter_raw_lines(
    storage: Storage, uri: StorageURI, limit: int | None, max_row_bytes: int = 256 * 1024 * 1024
) -> Iterator[tuple[int, bytes | OversizedLine]]:
    """(index, raw line) for every non-empty line, up to `limit` non-empty lines."""
    seen = 0
    for index, raw in enumerate(iter_bounded_lines(storage.iter_chunks(uri), max_row_bytes)):
        if not raw.strip() or raw.strip() == BOM:
            continue
        if limit is not None and seen >= limit:
            return
        seen += 1
        yield index, raw


def iter_shard(
    storage: Storage,
    uri: StorageURI,
    *,
    shard: int,
    num_shards: int,
    limit: int | None,
    max_row_bytes: int,
) -> Iterator[Task | BadRow]:
    """The shard's tasks and bad rows, in file order, streamed."""
    for index, raw in iter_raw_lines(storage, uri, limit, max_row_bytes):
        if index % num_shards == shard:
            yield parse_line(index, raw, max_row_bytes)


def count_shard_lines(
    storage: Storage, uri: StorageURI, *, num_shards: int, limit: int | None
) -> list[int]:
    """Non-empty lines per shard (an upper bound of tasks, for progress totals).

    Lines are kept only up to COUNT_LINE_BYTES (only their count matters here).
    """
    counts = [0] * num_shards
    for index, _ in iter_raw_lines(storage, uri, limit, COUNT_LINE_BYTES):
        counts[index % num_shards] += 1
    return counts


def _encodable(row: dict[str, Any]) -> bool:
    """Whether the row can be written back as UTF-8 (a lone \\udXXX escape cannot)."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _excerpt(raw: bytes) -> str:
    return raw[:EXCERPT_CHARS].decode("utf-8", errors="replace")

"""The task reader: line-number indices, sharding, limit, and every kind of bad row."""

from __future__ import annotations

import json
from pathlib import Path

from rolloutkit import math_task

from gym_operator.rollout.tasks import BadRow, Task, count_shard_lines, iter_shard
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri


def _read(path: Path, shard: int = 0, n: int = 1, limit: int | None = None, max_bytes=4096):
    return list(
        iter_shard(
            Storage(),
            parse_uri(str(path)),
            shard=shard,
            num_shards=n,
            limit=limit,
            max_row_bytes=max_bytes,
        )
    )


def test_index_is_line_number_and_shards_partition(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = [json.dumps(math_task(i)) for i in range(10)]
    lines.insert(3, "")
    path.write_text("\n".join(lines) + "\n")
    everything = _read(path)
    assert [t.index for t in everything] == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]
    shards = [_read(path, s, 3) for s in range(3)]
    assert sorted(t.index for part in shards for t in part) == [t.index for t in everything]
    assert all(t.index % 3 == s for s, part in enumerate(shards) for t in part)
    assert count_shard_lines(Storage(), parse_uri(str(path)), num_shards=3, limit=None) == [
        len(p) for p in shards
    ]


def test_limit_counts_non_empty_lines_before_sharding(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(math_task(i)) for i in range(10)))
    assert len(_read(path, limit=4)) == 4
    assert [t.index for t in _read(path, 1, 2, limit=4)] == [1, 3]


def test_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    body = "\r\n".join(json.dumps(math_task(i)) for i in range(3)) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    rows = _read(path)
    assert all(isinstance(r, Task) for r in rows) and len(rows) == 3


def test_bad_rows_have_reasons(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    good = json.dumps(math_task(0)).encode()
    path.write_bytes(
        b"\n".join(
            [
                good,
                b"{not json",
                b"\xff\xfe garbage",
                b"[1, 2]",
                b'{"expected_answer": "1"}',
                b'{"responses_create_params": {"input": ""}}',
                b'{"responses_create_params": {"input": "' + b"x" * 5000 + b'"}}',
                good,
            ]
        )
    )
    rows = _read(path)
    bad = {r.index: r.reason for r in rows if isinstance(r, BadRow)}
    assert [r.index for r in rows if isinstance(r, Task)] == [0, 7]
    assert "malformed JSON" in bad[1]
    assert "not UTF-8" in bad[2]
    assert "not a JSON object" in bad[3]
    assert "no responses_create_params" in bad[4]
    assert "input is empty" in bad[5]
    assert "maxRowBytes" in bad[6]
    assert BadRow(1, "r", "x").as_row()["line"] == 2

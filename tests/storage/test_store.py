"""file:// and s3:// (moto server over HTTP) behave the same through Storage."""

from __future__ import annotations

from pathlib import Path

import pytest

from gym_operator.storage.store import ObjectNotFound, S3Settings, Storage, iter_lines
from gym_operator.storage.uri import StorageURI, parse_uri


@pytest.fixture(params=["file", "s3"])
def prefix(request: pytest.FixtureRequest, tmp_path: Path) -> StorageURI:
    if request.param == "file":
        return parse_uri(str(tmp_path / "out"))
    bucket = request.getfixturevalue("s3_bucket")
    return parse_uri(f"s3://{bucket}/run1/")


@pytest.fixture
def storage() -> Storage:
    store = Storage(S3Settings.from_spec(None))
    yield store
    store.close()


def test_write_read_list_delete(storage: Storage, prefix: StorageURI) -> None:
    assert storage.list(prefix) == []
    storage.write_bytes(prefix.join("shard-00000", "a.jsonl"), b"one\ntwo\n")
    storage.write_bytes(prefix.join("_job.json"), b"{}")
    names = [u.name for u in storage.list(prefix)]
    assert names == ["_job.json", "a.jsonl"]
    assert storage.read_bytes(prefix.join("shard-00000/a.jsonl")) == b"one\ntwo\n"
    assert storage.exists(prefix.join("_job.json"))
    assert not storage.exists(prefix.join("missing"))
    with pytest.raises(ObjectNotFound):
        storage.read_bytes(prefix.join("missing"))
    assert storage.delete_prefix(prefix) == 2
    assert storage.list(prefix) == []


def test_streamed_lines(storage: Storage, prefix: StorageURI) -> None:
    data = b"".join(b"line %d\n" % i for i in range(5000)) + b"last-without-newline"
    storage.write_bytes(prefix.join("big.jsonl"), data)
    lines = list(iter_lines(storage.iter_chunks(prefix.join("big.jsonl"), size=1000)))
    assert len(lines) == 5001
    assert lines[0] == b"line 0" and lines[-1] == b"last-without-newline"


def test_uri_parsing(tmp_path: Path) -> None:
    assert parse_uri("s3://b/k/x.jsonl") == StorageURI("s3", "b", "k/x.jsonl")
    assert parse_uri(f"file://{tmp_path}/x").key == f"{tmp_path}/x"
    assert parse_uri("rel/x").scheme == "file"
    with pytest.raises(ValueError, match="unsupported scheme 'gs'"):
        parse_uri("gs://b/k")
    with pytest.raises(ValueError, match="needs a bucket"):
        parse_uri("s3:///k")


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 64])
def test_lines_split_the_same_whatever_the_chunking(chunk_size: int) -> None:
    data = b'{"a":1}\n\n{"b":2}\n' + b"x" * 300 + b"\nlast without newline"
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    assert list(iter_lines(iter(chunks))) == data.split(b"\n")

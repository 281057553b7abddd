"""Reading and writing objects on file:// and s3:// through one `Storage` facade.

Writes are atomic: a local file is written beside its target (mode 0666 less the umask, as any
other tool's output) and renamed; an S3 PUT is atomic by nature. The S3 client is created once
per `Storage` and retries throttling (503 SlowDown) and connection errors with botocore's
standard retry mode.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gym_operator import errors
from gym_operator.storage.uri import StorageURI, parse_uri

READ_CHUNK = 1024 * 1024
log = logging.getLogger(__name__)


class ObjectNotFound(errors.BadSpec, FileNotFoundError):
    """The object does not exist (for a worker, an input the spec names: retrying cannot help)."""

    def reason(self) -> str:
        """`not found: <uri>`."""
        return f"not found: {self}"


@dataclass(frozen=True)
class S3Settings:
    """Connection settings for S3; None falls back to the standard AWS environment."""

    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 10
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    access_key_id: str | None = field(default=None, repr=False)
    """An explicit key pair (the operator reading with a job's Secret); None: the AWS chain."""
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: Any | None) -> S3Settings:
        """Build from an api S3Spec (or None), with AWS_ENDPOINT_URL / AWS_REGION as fallbacks."""
        endpoint = getattr(spec, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL")
        region = (
            getattr(spec, "region", None)
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        return cls(endpoint_url=endpoint, region=region)


class Storage:
    """Object access for both schemes; one instance per process, S3 client made on first use."""

    def __init__(self, s3: S3Settings | None = None) -> None:
        self.s3_settings = s3 or S3Settings.from_spec(None)
        self._s3_client: Any = None

    @property
    def s3(self) -> Any:
        """The boto3 S3 client (created once)."""
        if self._s3_client is None:
            import boto3
            from botocore.config import Config

            cfg = self.s3_settings
            self._s3_client = boto3.client(
                "s3",
                endpoint_url=cfg.endpoint_url,
                region_name=cfg.region or "us-east-1",
                aws_access_key_id=cfg.access_key_id,
                aws_secret_access_key=cfg.secret_access_key,
                config=Config(
                    retries={"max_attempts": cfg.max_attempts, "mode": "standard"},
                    connect_timeout=cfg.connect_timeout,
                    read_timeout=cfg.read_timeout,
                ),
            )
        return self._s3_client

    def read_bytes(self, uri: StorageURI | str) -> bytes:
        """The whole object; ObjectNotFound when absent."""
        loc = _loc(uri)
        if loc.scheme == "file":
            try:
                return Path(loc.key).read_bytes()
            except FileNotFoundError:
                raise ObjectNotFound(str(loc)) from None
        return b"".join(self._s3_chunks(loc, READ_CHUNK))

    def write_bytes(self, uri: StorageURI | str, data: bytes) -> None:
        """Write the whole object atomically (readers see the old or the new, never a part)."""
        loc = _loc(uri)
        if loc.scheme == "s3":
            with _about("writing", loc):
                self.s3.put_object(Bucket=loc.bucket, Key=loc.key, Body=data)
            return
        path = Path(loc.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Mode 0666 less the umask, as any other tool's output (mkstemp would make it 0600).
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, uri: StorageURI | str) -> bool:
        """Whether the object exists."""
        loc = _loc(uri)
        if loc.scheme == "file":
            return Path(loc.key).is_file()
        try:
            self.s3.head_object(Bucket=loc.bucket, Key=loc.key)
        except self.s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list(self, prefix: StorageURI | str) -> list[StorageURI]:
        """Every object below a directory prefix, sorted by key."""
        loc = _loc(prefix)
        if loc.scheme == "file":
            root = Path(loc.key)
            if not root.is_dir():
                return []
            return sorted(
                (StorageURI("file", "", str(p)) for p in root.rglob("*") if _visible_file(p)),
                key=lambda u: u.key,
            )
        key_prefix = loc.key.rstrip("/") + "/" if loc.key else ""
        found: list[StorageURI] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        with _about("listing", loc):
            for page in paginator.paginate(Bucket=loc.bucket, Prefix=key_prefix):
                found.extend(
                    StorageURI("s3", loc.bucket, o["Key"]) for o in page.get("Contents", [])
                )
        return sorted(found, key=lambda u: u.key)

    def delete(self, uri: StorageURI | str) -> None:
        """Delete one object; absent is fine."""
        loc = _loc(uri)
        if loc.scheme == "file":
            Path(loc.key).unlink(missing_ok=True)
        else:
            with _about("deleting", loc):
                self.s3.delete_object(Bucket=loc.bucket, Key=loc.key)

    def delete_prefix(self, prefix: StorageURI | str) -> int:
        """Delete every object below a prefix; returns how many."""
        objects = self.list(prefix)
        for obj in objects:
            self.delete(obj)
        return len(objects)

    def iter_chunks(self, uri: StorageURI | str, size: int = READ_CHUNK) -> Iterator[bytes]:
        """Stream an object in chunks, without holding it whole in memory."""
        loc = _loc(uri)
        if loc.scheme == "file":
            try:
                fh = open(loc.key, "rb")
            except FileNotFoundError:
                raise ObjectNotFound(str(loc)) from None
            with fh:
                while chunk := fh.read(size):
                    yield chunk
            return
        yield from self._s3_chunks(loc, size)

    def _s3_chunks(self, loc: StorageURI, size: int) -> Iterator[bytes]:
        """An S3 object's bytes. botocore does not retry a body cut off mid-stream: resume it
        with a Range request pinned to the same ETag, up to `max_attempts` cuts."""
        from botocore.exceptions import IncompleteReadError, ResponseStreamingError

        offset, cuts, etag = 0, 0, None
        while True:
            extra = {"IfMatch": etag} if etag else {}
            if offset:
                extra["Range"] = f"bytes={offset}-"
            try:
                with _about("reading", loc):
                    answer = self.s3.get_object(Bucket=loc.bucket, Key=loc.key, **extra)
            except self.s3.exceptions.NoSuchKey:
                raise ObjectNotFound(str(loc)) from None
            etag = etag or answer["ETag"]
            try:
                for chunk in answer["Body"].iter_chunks(size):
                    offset += len(chunk)
                    yield chunk
                return
            except (IncompleteReadError, ResponseStreamingError) as exc:
                cuts += 1
                if cuts >= self.s3_settings.max_attempts:
                    raise
                log.warning("%s: body cut off at byte %d (%s); resuming", loc, offset, exc)

    def close(self) -> None:
        """Release the S3 client's connections."""
        if self._s3_client is not None:
            self._s3_client.close()
            self._s3_client = None


def iter_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (without the newline); the last line may lack one.

    A line longer than a chunk is collected as a list of pieces and joined once, so a long line
    without a newline costs time linear in its length, not quadratic.
    """
    pieces: list[bytes] = []
    for chunk in chunks:
        *lines, rest = chunk.split(b"\n")
        if lines:
            pieces.append(lines[0])
            yield b"".join(pieces)
            yield from lines[1:]
            pieces = []
        if rest:
            pieces.append(rest)
    if pieces:
        yield b"".join(pieces)


@contextmanager
def _about(action: str, loc: StorageURI) -> Iterator[None]:
    """botocore errors name the operation, not the object: add which object it was."""
    try:
        yield
    except Exception as exc:
        exc.add_note(f"while {action} {loc}")
        raise


def _loc(uri: StorageURI | str) -> StorageURI:
    return uri if isinstance(uri, StorageURI) else parse_uri(uri)


def _visible_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and not path.name.endswith(".tmp")

"""Parsing storage URIs: s3://bucket/key, file:///abs/path, or a plain local path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from gym_operator import errors


@dataclass(frozen=True)
class StorageURI:
    """A parsed location: scheme `file` or `s3`; for file, bucket is empty and key is a path."""

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.key}"
        return f"file://{self.key}"

    def join(self, *parts: str) -> StorageURI:
        """A location below this one (this one is treated as a directory prefix)."""
        base = self.key.rstrip("/")
        tail = "/".join(p.strip("/") for p in parts if p)
        key = f"{base}/{tail}" if base else tail
        return StorageURI(self.scheme, self.bucket, key)

    @property
    def name(self) -> str:
        """The last path component."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]


class BadURI(errors.BadSpec, ValueError):
    """A URI this package cannot read or write; the message names it."""


def parse_uri(uri: str) -> StorageURI:
    """Parse a URI; BadURI naming the URI when the scheme is not supported."""
    if "://" not in uri:
        return StorageURI("file", "", str(Path(uri).expanduser().resolve()))
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return StorageURI("file", "", str(Path(parsed.netloc + parsed.path).resolve()))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise BadURI(f"{uri!r}: an s3:// URI needs a bucket (s3://bucket/key)")
        return StorageURI("s3", parsed.netloc, parsed.path.lstrip("/"))
    raise BadURI(f"{uri!r}: unsupported scheme {parsed.scheme!r} (use s3:// or file://)")

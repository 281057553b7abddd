"""Helpers shared by the fault tests (import as `faultkit`: pytest puts this folder on sys.path)."""

from __future__ import annotations

from gym_operator.storage.store import S3Settings, Storage
from gym_operator.testing.s3_fault_proxy import S3FaultProxy


def proxied(proxy: S3FaultProxy, max_attempts: int = 10, read_timeout: float = 5.0) -> Storage:
    """Storage whose S3 endpoint is the fault proxy."""
    return Storage(
        S3Settings(
            endpoint_url=proxy.url,
            region="us-east-1",
            max_attempts=max_attempts,
            connect_timeout=2.0,
            read_timeout=read_timeout,
        )
    )

"""Fixtures of the fault suite: the S3 fault proxy in front of the moto server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gym_operator.storage.store import S3Settings, Storage
from gym_operator.testing.s3_fault_proxy import S3FaultProxy


@pytest.fixture
def s3_proxy(moto_server: str) -> Iterator[S3FaultProxy]:
    """A fault proxy in front of moto, with no faults until the test sets `plan`."""
    proxy = S3FaultProxy(moto_server, seed=1234)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def clean_storage(s3_env: str) -> Iterator[Storage]:
    """Storage talking to moto directly (the test's view of what really is in the bucket)."""
    store = Storage(S3Settings(endpoint_url=s3_env, region="us-east-1"))
    yield store
    store.close()


# The operator-fault tests reuse the e2e helpers and fixtures (`clusterkit`, `opfixtures`);
# appended, so nothing of this folder is shadowed.
E2E_DIR = str(Path(__file__).resolve().parents[1] / "e2e")
if E2E_DIR not in sys.path:
    sys.path.append(E2E_DIR)

from opfixtures import cluster, operator_env, world  # noqa: E402, F401

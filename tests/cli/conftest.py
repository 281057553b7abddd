"""Fixtures of the CLI tests: the stub model on loopback, seen from the user's side."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread


@pytest.fixture
def stub() -> Iterator[tuple[StubModel, str]]:
    """A stub model (no latency, no faults) on loopback; yields (state, base URL)."""
    model = StubModel(StubConfig())
    with serve_in_thread(model) as url:
        yield model, url

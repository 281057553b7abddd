"""Fixtures of the verifier tests: a verifier server on loopback and response builders."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gym_operator.verify.server import VerifierSettings, start_server

StartServer = Callable[..., Awaitable[str]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to loopback servers."""
    async with aiohttp.ClientSession(trust_env=False) as session:
        yield session


@pytest.fixture
async def verifier_server() -> AsyncIterator[StartServer]:
    """Start verifier servers on 127.0.0.1:0 (`await start(builtin, **settings)` -> base URL)."""
    runners = []

    async def start(builtin: str, **settings: Any) -> str:
        settings.setdefault("workers", 2)
        runner, url = await start_server(VerifierSettings(builtin=builtin, **settings))
        runners.append(runner)
        return url

    yield start
    for runner in runners:
        await runner.cleanup()

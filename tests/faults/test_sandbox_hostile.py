"""Hostile programs against the code sandbox, through the verifier server on loopback.

Each case asserts the safe outcome and that the server then answers a good request at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gym_operator.verify.server import VerifierSettings, start_server

CANARY = "canary-9f2c41-never-leaves-the-server"
ECHO_TASK = {"test_cases": [{"input": "abc\n", "output": "cba"}]}
REVERSE = "```python\nprint(input()[::-1])\n```"
SWAP_OUTPUT = (
    "import os, sys\n"
    "print('visible')\n"
    "sys.stdout.flush()\n"
    "for name in os.listdir('.'):\n"
    "    if name != 'main.py':\n"
    "        os.unlink(name)\n"
    "os.symlink({target!r}, 'stdout.txt')\n"
    "os.symlink({target!r}, 'stderr.txt')\n"
    "os.mkfifo('stdin.txt')\n"
    "os.mkfifo('results.txt')\n"
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(trust_env=False) as session:
        yield session


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """A code_execution verifier server whose own environment holds canary secrets."""
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY)
    settings = VerifierSettings(
        builtin="code_execution", config={"timeoutSeconds": 3}, workers=2, timeout_seconds=90
    )
    runner, url = await start_server(settings)
    yield url
    await runner.cleanup()


async def verify(
    http: aiohttp.ClientSession, url: str, task: dict[str, Any], text: str
) -> tuple[int, dict[str, Any]]:
    response = {
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text}],
            }
        ]
    }
    async with http.post(f"{url}/verify", json={**task, "response": response}) as resp:
        return resp.status, await resp.json(content_type=None)


async def tool(http: aiohttp.ClientSession, url: str, code: str) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{url}/run_python", json={"code": code}) as resp:
        return resp.status, await resp.json(content_type=None)


async def answers_a_good_request(http: aiohttp.ClientSession, url: str) -> None:
    status, answer = await verify(http, url, ECHO_TASK, REVERSE)
    assert (status, answer["reward"]) == (200, 1.0), answer


@pytest.mark.parametrize("target", ["/etc/shadow", "/proc/self/environ", "/dev/zero"])
async def test_a_result_file_swapped_for_a_link_yields_only_the_programs_output(
    server: str, http: aiohttp.ClientSession, target: str
) -> None:
    program = SWAP_OUTPUT.format(target=target)
    status, answer = await verify(
        http, server, {"test_cases": [{"input": "", "output": "visible"}]}, program
    )
    assert (status, answer["reward"]) == (200, 1.0), answer
    status, ran = await tool(http, server, program)
    assert status == 200 and ran["stdout"] == "visible\n" and ran["exit_code"] == 0, ran
    assert "root:" not in str(ran) and CANARY not in str(ran)
    await answers_a_good_request(http, server)


async def test_the_servers_environment_never_reaches_the_program(
    server: str, http: aiohttp.ClientSession
) -> None:
    reads = (
        "import os\n"
        "print(dict(os.environ))\n"
        "for path in ('/proc/self/environ', f'/proc/{os.getppid()}/environ', '/proc/1/environ'):\n"
        "    try:\n"
        "        print(open(path, 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
    )
    status, ran = await tool(http, server, reads)
    assert status == 200 and ran["exit_code"] == 0, ran
    assert CANARY not in str(ran) and "OPENAI" not in str(ran) and "AWS_" not in str(ran)
    status, answer = await verify(http, server, {"tests": "assert 1 == 1"}, reads)
    assert status == 200 and CANARY not in str(answer)
    await answers_a_good_request(http, server)


async def test_a_fifo_where_output_was_is_no_hang(server: str, http: aiohttp.ClientSession) -> None:
    program = (
        "import os\nfor n in ('stdout.txt', 'stderr.txt', 'x'):\n    os.mkfifo(n)\nprint('ok')"
    )
    for _ in range(6):
        status, ran = await tool(http, server, program)
        assert status == 200 and ran["stdout"] == "ok\n", ran
    await answers_a_good_request(http, server)

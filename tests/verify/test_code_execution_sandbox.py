"""code_execution through the server: correct programs score, hostile ones end bounded at 0.

After every hostile input the server must still answer /health and score a normal request.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from verifykit import post_verify

import gym_operator
from gym_operator.verify.base import VerifierError
from gym_operator.verify.builtins.code_execution import extract_program
from gym_operator.verify.sandbox import (
    Isolation,
    detect_isolation,
    require_isolation,
    run_python,
)

SECRET = "s3cr3t-value-never-visible"
ECHO_TASK = {"test_cases": [{"input": "abc\n", "output": "cba"}, {"input": "xy\n", "output": "yx"}]}
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
REVERSE = "```python\nprint(input()[::-1])\n```"


@pytest.fixture
async def code_server(verifier_server, monkeypatch):
    monkeypatch.setenv("GYMOPS_TEST_SECRET", SECRET)
    return await verifier_server(
        "code_execution", workers=2, timeout_seconds=30, config={"timeoutSeconds": 2}
    )


async def _still_serving(http, url: str) -> None:
    async with http.get(f"{url}/health") as resp:
        assert resp.status == 200 and (await resp.json())["workers"] == 2
    status, answer = await post_verify(http, url, ECHO_TASK, REVERSE)
    assert (status, answer["reward"]) == (200, 1.0)


async def test_correct_partial_and_assert_style_programs(code_server, http) -> None:
    status, answer = await post_verify(http, code_server, ECHO_TASK, REVERSE)
    assert (status, answer["reward"]) == (200, 1.0)
    assert answer["reward_components"] == {"tests_passed": 1.0, "format": 1.0}
    half = "s = input()\nprint('cba' if s == 'abc' else s)"
    status, answer = await post_verify(http, code_server, ECHO_TASK, half)
    assert answer["reward"] == 0.5
    assert "wrong output" in answer["verifier_details"]["failures"][0]
    asserts = {"tests": "assert add(2, 3) == 5\nassert add(-1, 1) == 0"}
    status, answer = await post_verify(
        http, code_server, asserts, "def add(a, b):\n    return a + b"
    )
    assert answer["reward"] == 1.0
    status, answer = await post_verify(
        http, code_server, asserts, "def add(a, b):\n    return a - b"
    )
    assert answer["reward"] == 0.0
    assert "AssertionError" in answer["verifier_details"]["failures"][0]


async def test_empty_program_scores_zero_and_missing_tests_is_422(code_server, http) -> None:
    status, answer = await post_verify(http, code_server, ECHO_TASK, "")
    assert (status, answer["reward"]) == (200, 0.0)
    status, answer = await post_verify(http, code_server, {}, REVERSE)
    assert status == 422 and "test_cases" in answer["error"]


@pytest.mark.parametrize(
    ("name", "program", "reason"),
    [
        ("infinite loop", "while True:\n    pass", "timeout"),
        (
            "fork bomb",
            FORK_BOMB,
            "timeout",
        ),
        ("memory bomb", "x = bytearray(4 * 1024 ** 3)\nprint('cba')", "MemoryError"),
        ("output flood", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", "limit"),
    ],
    ids=["infinite-loop", "fork-bomb", "memory-bomb", "output-flood"],
)
async def test_resource_bombs_end_bounded_with_a_reason(
    code_server, http, name, program, reason
) -> None:
    task = {"test_cases": [{"input": "abc\n", "output": "cba"}]}
    status, answer = await post_verify(http, code_server, task, program)
    assert (status, answer["reward"]) == (200, 0.0), name
    assert reason in answer["verifier_details"]["failures"][0] or (
        reason == "limit" and "File too large" in answer["verifier_details"]["failures"][0]
    )
    await _still_serving(http, code_server)


async def test_writing_outside_its_directory_fails(code_server, http, tmp_path) -> None:
    target = tmp_path / "escaped.txt"
    program = f"open({str(target)!r}, 'w').write('pwned')\nprint('written')"
    task = {"test_cases": [{"input": "", "output": "written"}]}
    status, answer = await post_verify(http, code_server, task, program)
    assert (status, answer["reward"]) == (200, 0.0)
    assert "PermissionError" in answer["verifier_details"]["failures"][0]
    assert list(tmp_path.iterdir()) == []
    await _still_serving(http, code_server)


async def test_the_servers_environment_is_not_visible(code_server, http) -> None:
    task = {"test_cases": [{"input": "", "output": SECRET}]}
    from_env = "import os\nprint(os.environ.get('GYMOPS_TEST_SECRET', 'absent'))"
    status, answer = await post_verify(http, code_server, task, from_env)
    assert (status, answer["reward"]) == (200, 0.0)
    assert "absent" in answer["verifier_details"]["failures"][0]
    from_proc = (
        "import re\n"
        f"data = open('/proc/{os.getpid()}/environ', 'rb').read().decode()\n"
        "print(re.search('GYMOPS_TEST_SECRET=([^\\x00]*)', data).group(1))"
    )
    status, answer = await post_verify(http, code_server, task, from_proc)
    assert (status, answer["reward"]) == (200, 0.0)
    assert SECRET not in str(answer["verifier_details"])
    await _still_serving(http, code_server)


async def test_no_network_to_a_loopback_listener(code_server, http) -> None:
    connections = []

    async def accept(reader, writer) -> None:
        connections.append(True)
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    program = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        "print('connected')"
    )
    task = {"test_cases": [{"input": "", "output": "connected"}]}
    try:
        status, answer = await post_verify(http, code_server, task, program)
    finally:
        listener.close()
        await listener.wait_closed()
    assert (status, answer["reward"]) == (200, 0.0)
    assert "Error" in answer["verifier_details"]["failures"][0]
    assert connections == []
    await _still_serving(http, code_server)


def test_this_machine_isolates_and_refusal_without_isolation() -> None:
    assert detect_isolation().isolated
    bare = Isolation(unshare=None, landlock=False, python="/usr/bin/python3")
    with pytest.raises(VerifierError, match="allowUnsandboxed"):
        require_isolation(bare, allow_unsandboxed=False)
    require_isolation(bare, allow_unsandboxed=True)


@pytest.mark.parametrize(
    ("text", "program", "fenced"),
    [
        ("Here:\n```python\nprint(1)\n```\nand better:\n```py\nprint(2)\n```", "print(2)\n", True),
        ("```\nprint(3)\n```", "print(3)\n", True),
        ("print(4)", "print(4)", False),
    ],
)
def test_program_extraction(text, program, fenced) -> None:
    assert extract_program(text) == (program, fenced)


async def test_run_python_tool_runs_sandboxed(code_server, http) -> None:
    async with http.post(f"{code_server}/seed_session", json={}) as resp:
        session = (await resp.json())["session_id"]
    code = {"code": "import os\nprint(sum(range(10)), os.environ.get('GYMOPS_TEST_SECRET'))"}
    async with http.post(
        f"{code_server}/run_python", json=code, headers={"X-Session-Id": session}
    ) as resp:
        answer = await resp.json()
    assert answer["exit_code"] == 0 and answer["stdout"] == "45 None\n"
    async with http.post(f"{code_server}/run_python", data=b"not json") as resp:
        assert resp.status == 400


def test_a_sandbox_that_cannot_start_the_program_is_an_error_not_a_score() -> None:
    working = detect_isolation()
    broken = Isolation(unshare=working.unshare, landlock=False, python="/nonexistent/python3")
    with pytest.raises(VerifierError, match="could not start the program"):
        run_python("print(1)", isolation=broken)
    failing_program = run_python("raise SystemExit(3)", isolation=working)
    assert failing_program.started and failing_program.exit_code == 3


async def test_a_fork_bomb_does_not_starve_a_concurrent_run(code_server, http) -> None:
    task = {"test_cases": [{"input": "", "output": "never"}]}
    bomb = asyncio.ensure_future(post_verify(http, code_server, task, FORK_BOMB))
    for _ in range(100):  # until the bomb is inside a worker
        async with http.get(f"{code_server}/health") as resp:
            if (await resp.json())["in_flight"]:
                break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # and forking
    status, answer = await post_verify(http, code_server, ECHO_TASK, REVERSE)
    assert (status, answer["reward"]) == (200, 1.0)
    status, answer = await bomb
    assert (status, answer["reward"]) == (200, 0.0)


async def test_without_namespaces_landlock_and_limits_still_hold(tmp_path) -> None:
    working = detect_isolation()
    if not working.landlock:
        pytest.skip("this kernel has no Landlock")
    bare = Isolation(unshare=None, landlock=True, python=working.python)
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    hostile = {
        "write": f"open({str(tmp_path / 'x')!r}, 'w').write('x')",
        "connect": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)",
        "signal": "import os\nos.kill(1, 0)",
    }
    try:
        for name, code in hostile.items():
            result = await asyncio.to_thread(
                run_python, code, "", None, allow_unsandboxed=True, isolation=bare
            )
            assert result.started and result.exit_code == 1, name
            assert "Error" in result.reason, name
    finally:
        listener.close()
        await listener.wait_closed()
    assert list(tmp_path.iterdir()) == []


def test_reads_outside_the_system_libraries_are_denied() -> None:
    isolation = detect_isolation()
    if not isolation.read_roots:
        pytest.skip("reads are not confined on this machine (no Landlock)")
    readable_by_permissions = __file__  # world-readable, in a world-traversable directory
    result = run_python(f"print(open({readable_by_permissions!r}).read()[:10])")
    assert result.exit_code == 1 and "PermissionError" in result.reason
    assert run_python("import json, fractions\nprint(json.dumps(1))").stdout == "1\n"


def test_assert_tests_run_when_the_package_sits_below_a_private_directory(tmp_path) -> None:
    """An install beneath a 0700 directory (a home or a `mktemp -d`): the run's own uid cannot
    enter it, yet the harness still runs the program and its tests."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shutil.copytree(Path(gym_operator.__file__).parent, private / "gym_operator")
    check = (
        "from gym_operator.verify.sandbox import run_tests\n"
        "verdicts = run_tests('def f(x):\\n    return 2 * x\\n', 'assert f(2) == 4', ['t0'])\n"
        "print(verdicts.outcomes)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(private)}
    done = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[(True," in done.stdout, done.stdout

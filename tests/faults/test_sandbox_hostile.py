"""Hostile programs against the code sandbox, through the verifier server on loopback.

Each case asserts the safe outcome and that the server then answers a good request at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zstandard
from aiohttp import web
from faultkit import app_in_thread, gymops, job_body, wait_or_dump, write_spec

from gym_operator.verify.local_server import PASSED_VARIABLES, child_environment
from gym_operator.verify.sandbox import SandboxLimits, detect_isolation, finish, launch
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
    assert CANARY not in str(ran) and "OPENAI" not in str(ran) and "AWS_" not in str(ran), ran
    status, answer = await verify(http, server, {"tests": "assert 1 == 1"}, reads)
    assert (status, answer.get("reward")) == (200, 1.0) and CANARY not in str(answer), answer
    await answers_a_good_request(http, server)


async def test_a_fifo_where_output_was_is_no_hang(server: str, http: aiohttp.ClientSession) -> None:
    program = (
        "import os\nfor n in ('stdout.txt', 'stderr.txt', 'x'):\n    os.mkfifo(n)\nprint('ok')"
    )
    calls = await asyncio.gather(*(tool(http, server, program) for _ in range(6)))
    for status, ran in calls:
        assert status == 200 and ran["stdout"] == "ok\n", ran
    await answers_a_good_request(http, server)


# A program that hunts for secrets wherever the verifier could have them: its environment, every
# /proc/*/environ and cmdline it can read, and the output file swapped for the reader's environ.
HUNTER = """```python
import glob, os
found = [repr(dict(os.environ))]
for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):
    try:
        found.append(open(path, 'rb').read().decode('latin-1'))
    except OSError:
        pass
hits = [x[max(0, x.find('canary') - 40):x.find('canary') + 80] for x in found if 'canary' in x]
print('HITS', hits)
import sys
sys.stdout.flush()
for name in os.listdir('.'):
    if name != 'main.py':
        os.unlink(name)
os.symlink('/proc/self/environ', 'stdout.txt')
```"""


def hunter_model() -> web.Application:
    """An OpenAI-compatible chat endpoint: first a `run_python` call of the hunter, then the hunter
    as the final answer."""

    async def chat(request: web.Request) -> web.Response:
        messages = (await request.json())["messages"]
        if messages[-1]["role"] == "tool":
            message: dict[str, Any] = {"role": "assistant", "content": HUNTER}
        else:
            code = HUNTER.removeprefix("```python\n").removesuffix("```")
            call = {"name": "run_python", "arguments": json.dumps({"code": code})}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call-1", "type": "function", "function": call}],
            }
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return web.json_response(
            {
                "id": "chatcmpl-hunter",
                "object": "chat.completion",
                "created": 0,
                "model": "stub",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 50, "total_tokens": 55},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


RUN_PYTHON_TOOL = {
    "type": "function",
    "name": "run_python",
    "description": "Run Python code.",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
}


@pytest.mark.slow
def test_local_mode_secrets_never_reach_the_rows(tmp_path: Path) -> None:
    """`gymops run` and `gymops generate` with canary secrets in their environment: no artefact
    holds them, though the verifier ran a program hunting for them."""
    canary = f"canary-{uuid.uuid4().hex}"
    tasks = tmp_path / "tasks.jsonl"
    row = {"test_cases": [{"input": "", "output": "never"}]}
    params = {"tools": [RUN_PYTHON_TOOL]}
    rows = [{**row, "responses_create_params": {**params, "input": f"task {i}"}} for i in range(3)]
    tasks.write_text("".join(json.dumps(r) + "\n" for r in rows))
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        "FAULTS_API_KEY": canary,
        "OPENAI_API_KEY": canary,
        "AWS_SECRET_ACCESS_KEY": canary,
        "AWS_ACCESS_KEY_ID": canary,
    }
    verifier = {"builtin": "code_execution", "config": {"timeoutSeconds": 5}}
    termination = logs / "termination"
    termination.write_text("")
    with app_in_thread(hunter_model()) as model_url:
        for command in ("run", "generate"):
            out = tmp_path / f"out-{command}"
            body = job_body(str(tasks), str(out), model_url + "/v1", "unused")
            body["spec"]["verifier"] = {**verifier, "timeoutSeconds": 60}
            body["spec"]["retry"].update(requestTimeoutSeconds=30, maxRetrySeconds=60)
            spec = write_spec(tmp_path / f"{command}.yaml", body)
            args = ["run", spec, "--no-progress"] if command == "run" else ["generate", "--spec"]
            if command == "generate":
                args += [spec, "--shard", "0/1", "--termination-log", str(termination)]
            log = logs / f"{command}.log"
            proc = gymops("--log-level", "DEBUG", *args, log=log, env=env)
            assert wait_or_dump(proc, 300, log) == 0, log.read_text()[-3000:]
            lines = [ln for p in out.rglob("*.jsonl*") for ln in readable(p).splitlines() if ln]
            # 3 tasks x 2 repeats, each row showing the tool ran and found nothing.
            assert len(lines) == 6 and all("HITS []" in ln for ln in lines), lines[-1][-3000:]
    assert files_with(tmp_path, canary) == []


def readable(path: Path) -> str:
    """A file's text as a person would read it (zstd parts decompressed)."""
    data = path.read_bytes()
    if path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data.decode("utf-8", errors="replace")


def files_with(root: Path, secret: str) -> list[str]:
    """Every file below `root` holding `secret`."""
    return [str(p) for p in sorted(root.rglob("*")) if p.is_file() and secret in readable(p)]


def test_the_local_verifier_process_gets_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "FAULTS_API_KEY", "JUDGE_API_KEY"):
        monkeypatch.setenv(name, CANARY)
    env = child_environment("code_execution", {"apiKeyEnv": "OPENAI_API_KEY"})
    assert CANARY not in env.values() and set(env) <= set(PASSED_VARIABLES)
    judge = child_environment("llm_judge", {})
    assert {k for k, v in judge.items() if v == CANARY} == {"JUDGE_API_KEY"}


RESOURCE_HOGS = {
    "48 memfds of 16 MB": (
        "import os\nfds = []\nfor i in range(48):\n    fd = os.memfd_create(f'm{i}')\n"
        "    os.write(fd, b'x' * (16 << 20))\n    fds.append(fd)\nprint('hogged', len(fds))"
    ),
    "8 processes of 300 MB each": (
        "import os\nr, w = os.pipe()\nhold, _ = os.pipe()\nfor i in range(8):\n"
        "    if os.fork() == 0:\n        x = bytearray(300 << 20)\n"
        "        x[::4096] = b'y' * len(x[::4096])\n        os.write(w, b'1')\n"
        "        os.read(hold, 1)\n"
        "done = b''\nwhile len(done) < 8:\n    done += os.read(r, 8)\nprint('hogged', len(done))"
    ),
    "40 files of 16 MB": (
        "for i in range(40):\n    with open(f'f{i}', 'wb') as f:\n"
        "        f.write(b'x' * ((16 << 20) - 1))\nprint('hogged', 40)"
    ),
    "unlinked open files": (
        "import os\nkeep = []\nfor i in range(40):\n    f = open(f'u{i}', 'wb')\n"
        "    f.write(b'x' * (8 << 20))\n    f.flush()\n    os.unlink(f'u{i}')\n    keep.append(f)\n"
        "print('hogged', len(keep))"
    ),
    "100000 empty files": (
        "for i in range(100000):\n    open(f'e{i}', 'w').close()\nprint('hogged', 100000)"
    ),
    "SysV shared memory": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "ids = [libc.shmget(0, 64 << 20, 0o1000 | 0o600) for _ in range(16)]\n"
        "assert all(i >= 0 for i in ids), ctypes.get_errno()\nprint('hogged', ids)"
    ),
    "/dev/shm": "open('/dev/shm/hog', 'wb').write(b'x' * (256 << 20))\nprint('hogged')",
    "POSIX message queues": (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.mq_open(b'/hog', 0o100 | 2, 0o600, None) >= 0, ctypes.get_errno()\n"
        "print('hogged')"
    ),
    "unmounting its private directory": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.umount2(os.getcwd().encode(), 2) == 0, ctypes.get_errno()\nprint('hogged')"
    ),
}


@pytest.mark.parametrize("program", list(RESOURCE_HOGS.values()), ids=list(RESOURCE_HOGS))
async def test_memory_and_disk_hogs_are_refused(
    server: str, http: aiohttp.ClientSession, program: str
) -> None:
    status, ran = await tool(http, server, program)
    assert status == 200 and ran["exit_code"] != 0 and "hogged" not in ran["stdout"], ran
    await answers_a_good_request(http, server)


def marked_processes(marker: str) -> list[int]:
    """Processes whose name (/proc/PID/comm) is `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/comm").read().strip() == marker:
                found.append(int(entry))
        except OSError:
            continue
    return found


def lingering(marker: str) -> str:
    """A program that names itself `marker`, double-forks into a new session, and sleeps."""
    return (
        "import ctypes, os, time\n"
        f"ctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(3600)\n"
        "    os._exit(0)\n"
        "time.sleep(3600)\n"
    )


async def wait_gone(marker: str, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while marked_processes(marker) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    assert marked_processes(marker) == [], f"sandbox processes outlived their limit: {marker}"


async def test_a_pool_recycle_leaves_no_sandbox_running(http: aiohttp.ClientSession) -> None:
    """The server's request timeout (2 s) is shorter than the run's wall limit (60 s): the 504
    recycles the pool, and the runs its workers had started end with them."""
    settings = VerifierSettings(
        builtin="code_execution", config={"timeoutSeconds": 60}, workers=2, timeout_seconds=2
    )
    runner, url = await start_server(settings)
    marker = f"gx{uuid.uuid4().hex[:12]}"
    try:
        task = {"test_cases": [{"input": "", "output": "x"}] * 2}
        status, answer = await verify(http, url, task, lingering(marker))
        assert status == 504, answer
        await wait_gone(marker, 20)
        status, answer = await verify(http, url, ECHO_TASK, REVERSE)
        assert (status, answer["reward"]) == (200, 1.0), answer
    finally:
        await runner.cleanup()


def test_the_run_ends_itself_at_the_wall_limit_when_nobody_waits() -> None:
    """A run the server never waits for (its thread hung) still ends: its own pid 1 is the
    watchdog, at the wall limit plus a grace of 2 s."""
    marker = f"gw{uuid.uuid4().hex[:12]}"
    limits = SandboxLimits(wall_seconds=2)
    run = launch(detect_isolation(), {"main.py": lingering(marker)}, "main.py", [], "", limits)
    try:
        deadline = time.monotonic() + 30
        while not marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marked_processes(marker), "the program never started"
        while marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marked_processes(marker) == [], "the run outlived its wall limit"
    finally:
        result = finish(run, time.monotonic() + 10)
    assert result.timed_out and not result.ok


@pytest.mark.parametrize(
    ("key", "value"),
    [("memoryMB", -1), ("timeoutSeconds", -5), ("maxProcesses", 0), ("diskMB", "lots")],
)
def test_negative_or_odd_limits_are_refused_by_name(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"config.{key}"):
        VerifierSettings(builtin="code_execution", config={key: value})
    proc = subprocess.run(
        [sys.executable, "-m", "gym_operator.cli", "verify-server", "--verifier"]
        + ["code_execution", "--port", "0", "--config", json.dumps({key: value})],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and f"config.{key}" in proc.stderr, proc.stderr


def test_the_local_verifier_ends_with_the_gymops_process(tmp_path: Path) -> None:
    """A `gymops` killed with SIGKILL leaves no verifier process behind (its stdin closes)."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import asyncio, os, sys\n"
        "from gym_operator.verify.local_server import local_verifier\n"
        "async def main():\n"
        "    async with local_verifier('exact_match', {}, 30) as url:\n"
        "        print(url, flush=True)\n"
        "        await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        url = parent.stdout.readline().strip() if parent.stdout else ""
        assert url.startswith("http://127.0.0.1:"), url
        port = url.rsplit(":", 1)[1]
        with socket.create_connection(("127.0.0.1", int(port)), timeout=10):
            pass
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        except OSError:
            return
        time.sleep(0.2)
    raise AssertionError("the verifier outlived the gymops process that started it")

"""`gymops verify-server` as a process: serves, scores, stops cleanly; refuses bad flags."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

from verifykit import post_verify

from gym_operator.testing.loopback import free_port


def gymops(*args: str) -> list[str]:
    return [sys.executable, "-m", "gym_operator.cli", *args]


async def test_serves_until_sigterm(http) -> None:
    port = free_port()
    config = '{"extraction": "boxed"}'
    args = ["--verifier", "math", "--config", config, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(gymops("verify-server", *args, "--workers", "1", "--timeout", "30"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                async with http.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        break
            except OSError:
                await asyncio.sleep(0.05)
        status, answer = await post_verify(http, url, {"expected_answer": "2"}, "the answer is 2")
        assert (status, answer["reward"]) == (200, 0.0)  # the config's boxed-only extraction
        status, answer = await post_verify(http, url, {"expected_answer": "2"}, "\\boxed{2}")
        assert (status, answer["reward"]) == (200, 1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0


def test_bad_flags_exit_2_with_a_message() -> None:
    bad_config = subprocess.run(
        gymops("verify-server", "--verifier", "math", "--config", "{nope"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_config.returncode == 2 and "--config is not JSON" in bad_config.stderr
    unknown = subprocess.run(
        gymops("verify-server", "--verifier", "astrology", "--port", str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "unknown verifier 'astrology'" in unknown.stderr

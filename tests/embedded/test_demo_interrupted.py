"""Ctrl-C during `gymops demo`: the model server is stopped, and running again completes the job."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

READY = re.compile(r"embedded model smollm2 ready at \S+ in \S+ \(pid (\d+),")
DEMO = [sys.executable, "-m", "gym_operator.cli", "demo", "--limit", "2", "--repeats", "2"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_the_model_server_and_a_rerun_finishes(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [*DEMO, "--output", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stderr is not None
    server_pid = None
    for line in demo.stderr:
        found = READY.search(line)
        if found:
            server_pid = int(found.group(1))
            break
    assert server_pid is not None, "the demo never reported the model server ready"
    demo.send_signal(signal.SIGINT)
    demo.stderr.read()
    assert demo.wait(timeout=120) in (0, 3)  # 3: interrupted; 0: it was already done
    assert not _alive(server_pid), "the model server outlived the demo"

    rerun = subprocess.run(
        [*DEMO, "--output", str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = [
        json.loads(line)
        for part in sorted((tmp_path / "rollouts").glob("shard-*/part-*.jsonl"))
        for line in part.read_text(encoding="utf-8").splitlines()
    ]
    identities = sorted((r["_ng_task_index"], r["_ng_rollout_index"]) for r in rows)
    assert identities == [(0, 0), (0, 1), (1, 0), (1, 1)]

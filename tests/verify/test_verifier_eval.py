"""`gymops verifier-eval` on the labelled math set: the figures, the labels, bad input, a URL."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gym_operator.testing.loopback import free_port

DATA = Path(__file__).parent / "data"
LABELLED = DATA / "math_labelled.jsonl"
CATEGORIES = {
    "plain",
    "multiple_choice",
    "intervals",
    "spacing",
    "words",
    "roots",
    "complex_vector",
    "units",
    "rejected",
}


def gymops(*args: str) -> list[str]:
    return [sys.executable, "-m", "gym_operator.cli", "--log-level", "WARNING", *args]


def run_eval(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Run the command as a user does; (the --json figures, what it printed)."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        gymops("verifier-eval", str(LABELLED), "--json", str(out), "--workers", "2", *args),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(out.read_text()), done.stdout


def test_the_labelled_set_is_what_its_generator_computes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_math_labelled", DATA / "make_math_labelled.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = [json.dumps(row, ensure_ascii=False) for row in module.build()]
    assert LABELLED.read_text(encoding="utf-8").splitlines() == built
    rows = [json.loads(line) for line in built]
    assert len(rows) >= 300
    assert {row["category"] for row in rows} == CATEGORIES
    for category in CATEGORIES:
        labels = [row["label"] for row in rows if row["category"] == category]
        assert labels.count(True) == labels.count(False)


@pytest.mark.slow
def test_rule_based_math_agrees_with_the_labels(tmp_path: Path) -> None:
    figures, printed = run_eval(tmp_path, "--verifier", "math")
    overall = figures["overall"]
    assert overall["n"] == 468 and overall["failed"] == 0
    assert overall["agreement"] >= 0.97
    assert overall["fpr"] <= 0.02
    assert overall["tpr"] >= 0.95
    for name, category in figures["categories"].items():
        assert category["fpr"] <= 0.05, name
        assert category["agreement"] >= 0.9, name
    assert "agreement" in printed and "TPR-FPR" in printed and "Disagreements" in printed


def test_bad_labelled_files_are_refused_with_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": true, "response_text": "1", "expected_answer": "1"}\n{"oops"\n')
    done = subprocess.run(
        gymops("verifier-eval", str(bad), "--verifier", "math"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "bad.jsonl:2: not JSON" in done.stdout
    bad.write_text('{"response_text": "1", "expected_answer": "1"}\n')
    done = subprocess.run(
        gymops("verifier-eval", str(bad), "--verifier", "math"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "bad.jsonl:1: `label` must be true or false" in done.stdout
    bad.write_text('{"label": true, "response_text": "1", "expected_answer": "1"}\n')
    done = subprocess.run(
        gymops("verifier-eval", str(bad), "--verifier", "math", "--config", '{"judge": {}}'),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "config.judge.baseURL: Field required" in done.stdout
    nobody = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        gymops("verifier-eval", str(bad), "--verifier", nobody),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "the verifier scored no row" in done.stdout


async def test_a_verifier_server_url_is_evaluated_over_its_protocol(tmp_path: Path, http) -> None:
    port = free_port()
    args = ["--verifier", "math", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    server = subprocess.Popen(gymops("verify-server", *args))
    url = f"http://127.0.0.1:{port}"
    small = tmp_path / "small.jsonl"
    rows = [json.loads(line) for line in LABELLED.read_text().splitlines()]
    small.write_text("".join(json.dumps(r) + "\n" for r in rows if r["category"] == "rejected"))
    try:
        for _ in range(600):
            try:
                async with http.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        break
            except OSError:
                await asyncio.sleep(0.1)
        done = await asyncio.to_thread(
            subprocess.run,
            gymops("verifier-eval", str(small), "--verifier", url, "--json", str(tmp_path / "f")),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait, 30)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads((tmp_path / "f").read_text())
    assert figures["overall"]["n"] == 52
    assert figures["overall"]["agreement"] >= 0.97

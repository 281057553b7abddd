"""`gymops run` errors reach the terminal whole: text in square brackets is not rich markup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_missing_file_is_named_with_its_brackets(tmp_path: Path) -> None:
    missing = tmp_path / "job[local].yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "gym_operator.cli", "run", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "job[local].yaml" in proc.stdout.replace("\n", "")

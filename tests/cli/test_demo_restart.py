"""`gymops demo` with other settings is refused, its files untouched; --restart starts over."""

from __future__ import annotations

from pathlib import Path

import pytest
from clikit import gymops, output_of, tree

pytestmark = pytest.mark.embedded


def test_changed_demo_is_refused_untouched_and_restart_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    first = gymops("demo", "--output", str(out), "--limit", "1", "--repeats", "1", timeout=900)
    assert first.returncode == 0, output_of(first)[-3000:]
    assert "numRepeats: 1" in (out / "rolloutjob.yaml").read_text()
    before = tree(out)

    changed = gymops("demo", "--output", str(out), "--limit", "1", "--repeats", "2", timeout=900)
    text = output_of(changed)
    assert changed.returncode == 4, text[-3000:]
    assert "sampling.numRepeats: 1 -> 2" in text and "gymops demo --restart" in text
    assert tree(out) == before

    again = gymops(
        "demo", "--output", str(out), "--limit", "1", "--repeats", "2", "--restart", timeout=900
    )
    assert again.returncode == 0, output_of(again)[-3000:]
    assert "numRepeats: 2" in (out / "rolloutjob.yaml").read_text()

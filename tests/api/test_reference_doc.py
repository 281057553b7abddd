"""docs/reference.md is generated from api/ and must not drift from it."""

from __future__ import annotations

import re
from pathlib import Path

from gym_operator.api.reference import render_reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_reference_doc_is_current() -> None:
    assert DOC.read_text() == render_reference(), "docs/reference.md is stale: run `make reference`"


def test_every_field_has_a_description() -> None:
    lines = [line for line in render_reference().splitlines() if line.startswith("| `")]
    rows = [re.split(r"(?<!\\)\|", line) for line in lines]
    undocumented = [cells[1].strip() for cells in rows if not cells[4].strip()]
    assert undocumented == []

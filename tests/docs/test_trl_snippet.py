"""The TRL loading snippet of docs/integration.md runs as written, with and without a
validation split (the quickstart's own dataset has none)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data.builder import build_dataset
from gym_operator.data.synthetic import rollout_row, write_rollouts
from gym_operator.storage.store import Storage

ROOT = Path(__file__).resolve().parents[2]
DOC_DIR = "/data/math-sft-trl"


def snippet() -> str:
    """The python block of the TRL section that calls load_dataset."""
    text = (ROOT / "docs" / "integration.md").read_text(encoding="utf-8")
    trl = re.search(r"^## TRL\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert trl
    blocks = re.findall(r"^```python\n(.*?)^```", trl.group(1), re.DOTALL | re.MULTILINE)
    (found,) = [b for b in blocks if "load_dataset(" in b]
    return found


def build(root: Path, validation_fraction: float) -> Path:
    rows = [
        rollout_row(
            task,
            0,
            f"The answer is {task * 2}.",
            1.0,
            prompt=[{"role": "user", "content": f"What is {task} + {task}?"}],
            expected_answer=str(task * 2),
        )
        for task in range(40)
    ]
    storage = Storage()
    source = f"file://{root}/rollouts"
    write_rollouts(storage, source, rows, num_repeats=1, spec={"verifier": {"builtin": "math"}})
    out = root / "dataset"
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source}],
            "kind": "sft",
            "format": "trl",
            "split": {"validationFraction": validation_fraction},
            "output": {"uri": f"file://{out}"},
        }
    )
    build_dataset(spec, name="docs", source_uris=[source], output_uri=str(out), storage=storage)
    return out


@pytest.mark.parametrize("validation_fraction", [0.0, 0.25])
def test_the_trl_snippet_loads_the_dataset(tmp_path: Path, validation_fraction: float) -> None:
    pytest.importorskip("datasets", reason="the formats extra (make venv-formats) has datasets")
    out = build(tmp_path, validation_fraction)
    code = snippet().replace(DOC_DIR, str(out))
    assert code != snippet(), f"the snippet no longer names {DOC_DIR}"
    scope: dict[str, Any] = {}
    exec(compile(code, "docs/integration.md", "exec"), scope)
    assert len(scope["train"]) > 0
    if validation_fraction:
        assert scope["evaluation"] is not None and len(scope["evaluation"]) > 0
    else:
        assert scope["evaluation"] is None

"""The verifier's modules stay small enough to read at once: one concern each, under 400 lines."""

from __future__ import annotations

from pathlib import Path

import gym_operator.verify

LIMIT = 400


def test_no_verify_module_is_over_the_limit() -> None:
    root = Path(gym_operator.verify.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }
    assert sizes and {name: n for name, n in sizes.items() if n > LIMIT} == {}

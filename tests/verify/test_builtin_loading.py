"""A built-in verifier is imported only when it is used; every RolloutJob verifier name loads."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from gym_operator.api.rolloutjob import BUILTIN_VERIFIERS
from gym_operator.verify.base import get_fallback, get_tools, get_verifier

# Local mode's in-process checks, in a fresh interpreter: the regex check first and alone, then
# the other inline checks; after each step, which built-in modules and math libraries are loaded.
SCRIPT = """
import json, sys
from gym_operator.rollout.local_verifier import INLINE_BUILTINS, runs_inline
from gym_operator.verify.pool import run_check

def loaded():
    prefix = "gym_operator.verify.builtins."
    return {
        "builtins": sorted(m.removeprefix(prefix) for m in sys.modules if m.startswith(prefix)),
        "math_libraries": sorted(m for m in ("sympy", "math_verify") if m in sys.modules),
    }

regex = run_check("regex", {}, "#### 42", {"pattern": "#### \\\\d+"})
after_regex = loaded()
inline = {name: runs_inline(name) for name in sorted(INLINE_BUILTINS)}
mcqa = run_check("mcqa", {"expected_answer": "B"}, "Answer: B", {})
print(json.dumps({"regex": regex, "after_regex": after_regex, "inline": inline,
                  "mcqa": mcqa, "after_all_inline": loaded()}))
"""


@pytest.fixture(scope="module")
def fresh_process() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_regex_check_imports_only_the_regex_builtin(fresh_process: dict) -> None:
    assert fresh_process["regex"]["reward"] == 1.0
    assert fresh_process["after_regex"] == {"builtins": ["regex"], "math_libraries": []}


def test_local_mode_in_process_checks_never_load_sympy_or_math_verify(fresh_process: dict) -> None:
    assert all(fresh_process["inline"].values()), fresh_process["inline"]
    assert fresh_process["mcqa"]["reward"] == 1.0
    assert fresh_process["after_all_inline"]["math_libraries"] == []
    assert "math" not in fresh_process["after_all_inline"]["builtins"]


def test_every_verifier_name_of_the_rolloutjob_loads() -> None:
    for name in BUILTIN_VERIFIERS:
        assert callable(get_verifier(name)), name
        assert f"gym_operator.verify.builtins.{name}" in sys.modules, name
    assert set(get_tools("math")) == {"calculator"}
    assert set(get_tools("code_execution")) == {"run_python"}
    assert get_fallback("math") is not None


def test_an_unknown_name_lists_the_builtins() -> None:
    message = f"unknown verifier 'nope'; built-ins: {sorted(BUILTIN_VERIFIERS)}"
    with pytest.raises(KeyError, match=re.escape(message)):
        get_verifier("nope")
    assert get_tools("nope") == {}
    assert get_fallback("nope") is None

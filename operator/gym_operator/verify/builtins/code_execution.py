"""`code_execution`: run the response's Python program against the task's tests in the sandbox.

The program is the last ```python fenced block of the response (else the last ``` block, else
the whole response). Tests come from the task, either
`test_cases`: `[{"input": stdin, "output": expected stdout}, ...]` (output compared line by line,
trailing whitespace ignored; each case is a separate sandboxed run, see `verify/sandbox.py`), or
`tests`: Python code (asserts, `check(candidate)` calls, `test*` functions). Each top-level
statement of `tests` that is not a definition, import or assignment is one test, and so is each
`test*` function. The tests run in a sandbox of their own, apart from the program, and use its
names across a pipe as plain data (`verify/sandbox_harness.py`): a verdict is what the tests'
process saw, so exiting early, patching builtins or `assert`, editing files, printing results or
returning objects that equal everything pass nothing. Values that are not plain data (numbers,
strings, bytes, lists, tuples, dicts, sets) reach the tests as opaque objects: callable and with
attributes, but with no equality or truth value.

Config (all optional):

- `testCasesField` / `testsField` (default `test_cases` / `tests`): task fields holding the tests
- `timeoutSeconds` (default `10`): wall-clock limit of one run (CPU limit: the same, rounded up)
- `memoryMB` (default `512`): address-space limit of each process of one run
- `diskMB` (default `64`): all files of one run together (its own tmpfs, where namespaces work)
- `maxProcesses` (default `32`): process limit inside one run
- limits out of range (zero, negative, not a number) are refused with the key named
- `scoring` (default `fraction`): `fraction`: share of test cases passed; `all`: 1.0 only when all
  pass
- `allowUnsandboxed` (default `false`): run even where network isolation is unavailable

Reward: as `scoring` says; a program that loops, crashes, exceeds a limit or is missing scores
0.0 for that test with the reason in `details.failures`. Components: `tests_passed` (fraction)
and `format` (1.0 when the program came from a fenced block). A task without tests, or a machine
where the sandbox is unavailable (and unsandboxed runs are not allowed), is a VerifierError.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gym_operator.verify.base import VerifierError, VerifyResult, register
from gym_operator.verify.sandbox import SandboxLimits, SandboxResult, run_python, run_tests
from gym_operator.verify.sandbox_harness import test_labels

_PYTHON_FENCE = re.compile(r"```(?:python|py|python3)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def extract_program(text: str) -> tuple[str, bool]:
    """(program, came from a fence): last python fence, else last fence, else the text."""
    for fence in (_PYTHON_FENCE, _ANY_FENCE):
        blocks = fence.findall(text)
        if blocks:
            return blocks[-1], True
    return text.strip(), False


def same_output(actual: str, expected: str) -> bool:
    """Outputs equal line by line, ignoring trailing whitespace and trailing blank lines."""
    lines = [line.rstrip() for line in actual.rstrip().splitlines()]
    return lines == [line.rstrip() for line in expected.rstrip().splitlines()]


LIMIT_KEYS = {  # config key: (default, smallest, largest)
    "timeoutSeconds": (10.0, 0.1, 3600.0),
    "memoryMB": (512, 32, 65536),
    "diskMB": (64, 1, 65536),
    "maxProcesses": (32, 1, 4096),
}


def _limit(config: dict[str, Any], key: str) -> float:
    default, low, high = LIMIT_KEYS[key]
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise VerifierError(f"config.{key} must be a number from {low} to {high}, got {value!r}")
    return float(value)


def limits_from(config: dict[str, Any]) -> SandboxLimits:
    """Sandbox limits from the config; VerifierError names a limit out of range (e.g. -1)."""
    seconds = _limit(config, "timeoutSeconds")
    return SandboxLimits(
        wall_seconds=seconds,
        cpu_seconds=max(1, math.ceil(seconds)),
        memory_bytes=int(_limit(config, "memoryMB")) * 1024 * 1024,
        disk_bytes=int(_limit(config, "diskMB")) * 1024 * 1024,
        processes=int(_limit(config, "maxProcesses")),
    )


def _runs(task: dict[str, Any], program: str, config: dict[str, Any]) -> list[tuple[bool, str]]:
    """(passed, reason) per test case."""
    limits = limits_from(config)
    allow = bool(config.get("allowUnsandboxed", False))
    cases = task.get(config.get("testCasesField", "test_cases"))
    tests = task.get(config.get("testsField", "tests"))
    outcomes: list[tuple[bool, str]] = []
    if isinstance(cases, list) and cases:
        for index, case in enumerate(cases):
            if not isinstance(case, dict) or "output" not in case:
                raise VerifierError(f"test case {index} needs an 'output' (and optional 'input')")
            result = run_python(program, str(case.get("input", "")), limits, allow)
            outcomes.append(_judge(result, str(case["output"])))
        return outcomes
    if isinstance(tests, str) and tests.strip():
        try:
            labels = test_labels(tests)
        except SyntaxError as exc:
            raise VerifierError(f"the task's tests do not parse: {exc}") from None
        if not labels:
            raise VerifierError("the task's tests hold no test (no assert or call at top level)")
        verdicts = run_tests(program, tests, labels, limits, allow)
        return [
            (ok, "" if ok else f"{label}: {why}")
            for (ok, why), label in zip(verdicts.outcomes, labels, strict=True)
        ]
    raise VerifierError("task has neither a non-empty 'test_cases' list nor a 'tests' string")


def _judge(result: SandboxResult, expected: str | None) -> tuple[bool, str]:
    if not result.ok:
        return False, result.reason
    if expected is not None and not same_output(result.stdout, expected):
        return False, f"wrong output: {result.stdout[:200]!r}"
    return True, ""


@register("code_execution")
def check_code_execution(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """Share of the task's tests the program passes (or all-or-nothing)."""
    scoring = config.get("scoring", "fraction")
    if scoring not in ("fraction", "all"):
        raise VerifierError(f"config.scoring {scoring!r} is not one of ('fraction', 'all')")
    program, fenced = extract_program(text)
    if not program:
        if not (task.get(config.get("testCasesField", "test_cases")) or task.get("tests")):
            raise VerifierError(
                "task has neither a non-empty 'test_cases' list nor a 'tests' string"
            )
        return VerifyResult(
            0.0, {"tests_passed": 0.0, "format": 0.0}, {"failures": ["empty program"]}
        )
    outcomes = _runs(task, program, config)
    passed = sum(ok for ok, _ in outcomes) / len(outcomes)
    reward = passed if scoring == "fraction" else float(passed == 1.0)
    failures = [f"test {i}: {reason}" for i, (ok, reason) in enumerate(outcomes) if not ok]
    return VerifyResult(
        reward=reward,
        components={"tests_passed": passed, "format": 1.0 if fenced else 0.0},
        details={"failures": failures},
    )

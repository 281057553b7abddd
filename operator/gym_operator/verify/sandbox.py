"""Run untrusted Python in a throw-away sandbox: one process tree per run, bounded and isolated.

Each run gets a fresh temporary directory as cwd, an empty environment and `python -I`, started
through `sandbox_launcher.py`: resource limits, a per-run unprivileged uid when the server is
root, new user, network, mount, IPC and pid namespaces (no network; a tmpfs of its own as its
directory; a /proc of its own), Landlock where the kernel has it (writes only beneath the work
directory, reads only of system libraries and the interpreter, no TCP, signals scoped), seccomp
(no memfd, no SysV shared memory) and no capabilities. The namespace's pid 1 ends the run at the
wall-clock limit or when all its processes together use more memory than allowed, even if the
server is gone; the server also ends it at the wall-clock limit. stdin, stdout and stderr are
files with no name that the server opened before the run (the program cannot swap them for a
symlink or a FIFO; the server reads them by descriptor only), under RLIMIT_FSIZE, so a flood of
output is bounded too. The program's first act is a byte on a status pipe, so a sandbox failure
is never mistaken for a failing program. Isolation is probed once per process (strongest level
first); where namespaces are unavailable a run raises VerifierError unless the caller allows
unsandboxed runs. This module probes the isolation and runs programs and tests; how one run is
launched and ended is `sandbox_run.py`'s.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from gym_operator.verify.base import VerifierError
from gym_operator.verify.sandbox_run import (
    Isolation,
    Launch,
    SandboxLimits,
    SandboxResult,
    anonymous_file,
    finish,
    launch,
    read_descriptor,
    run_once,
)

log = logging.getLogger(__name__)

HARNESS = "sandbox_harness.py"
HARNESS_FILES = {
    name: Path(__file__).with_name(name).read_text(encoding="utf-8")
    for name in (HARNESS, "sandbox_wire.py")
}
"""The harness and the wire module it loads, copied into each run's work directory: the run's
unprivileged uid may not be able to enter the directories above an installed package (a 0700
home or temporary directory), and a copy there is read once, before the program starts."""
RESULTS_LIMIT_BYTES = 4 * 1024 * 1024


def _python_candidates() -> list[str]:
    found = [sys.executable, shutil.which("python3") or "", "/usr/bin/python3"]
    return [p for p in dict.fromkeys(found) if p and os.path.exists(p)]


SYSTEM_READ_ROOTS = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
)


def read_roots(python: str) -> tuple[str, ...]:
    """What a program may read: system libraries and the interpreter's installation (and venv)."""
    prefixes = {os.path.dirname(os.path.dirname(p)) for p in (python, os.path.realpath(python))}
    return tuple(dict.fromkeys([*SYSTEM_READ_ROOTS, *sorted(prefixes)]))


def _probe(isolation: Isolation) -> bool:
    try:
        result = run_once(isolation, "print('ok')", "", SandboxLimits(wall_seconds=20))
    except OSError:
        return False
    return result.ok and result.stdout.strip() == "ok"


_PRESET: list[Isolation] = []


def preset_isolation(isolation: Isolation) -> None:
    """Use `isolation` (probed by a parent process) instead of probing again in this process."""
    _PRESET[:] = [isolation]


def detect_isolation() -> Isolation:
    """What this process uses: a preset from the parent, else a probe (once per process)."""
    return _PRESET[0] if _PRESET else probe_isolation()


def _ladder() -> list[tuple[list[str] | None, bool, bool, bool]]:
    """(namespaces, landlock, confine reads, private directory), strongest first."""
    private = ["user", "net", "mount", "ipc", "pid"]
    plain = ["user", "net", "pid"]
    return [
        (private, True, True, True),
        (private, True, False, True),
        (plain, True, True, False),
        (plain, True, False, False),
        (private, False, False, True),
        (plain, False, False, False),
        (None, True, True, False),
        (None, True, False, False),
        (None, False, False, False),
    ]


@functools.cache
def probe_isolation() -> Isolation:
    """Probe once: the strongest wrapper, Landlock level and interpreter that run a program."""
    for (wrapper, landlock, confine, private), python in itertools.product(
        _ladder(), _python_candidates()
    ):
        reads = read_roots(python) if confine else ()
        isolation = Isolation(wrapper, landlock, python, reads, private)
        if _probe(isolation):
            log.log(
                logging.INFO if wrapper else logging.WARNING,
                "sandbox: namespaces %s, landlock %s, reads confined %s, private tmpfs %s, "
                "python %s",
                " ".join(wrapper) if wrapper else "UNAVAILABLE",
                landlock,
                confine,
                private,
                python,
            )
            return isolation
    log.warning("sandbox: no working sandbox on this machine")
    return Isolation(unshare=None, landlock=False, python=sys.executable)


@dataclass(frozen=True)
class TestVerdicts:
    """What the tests' process reported: one (passed, reason) per test, in order.

    A test it never reported (the run ended first) failed, with the run's reason.
    """

    outcomes: list[tuple[bool, str]]
    tests: SandboxResult
    solution: SandboxResult


def run_tests(
    code: str,
    tests: str,
    labels: list[str],
    limits: SandboxLimits | None = None,
    allow_unsandboxed: bool = False,
    isolation: Isolation | None = None,
) -> TestVerdicts:
    """Run the program and its assert-style tests in two sandboxes joined by pipes.

    The program runs first in its own sandbox and then serves its names; the tests run in a
    second one and fetch those names (see `sandbox_harness.py`). Verdicts come only from the
    tests' process, through a nameless file the solution's process never holds; `labels` (the
    tests the server parsed) says how many are expected.
    """
    isolation = isolation or detect_isolation()
    require_isolation(isolation, allow_unsandboxed)
    limits = limits or SandboxLimits()
    (requests_read, requests_write), (answers_read, answers_write) = os.pipe(), os.pipe()
    results = anonymous_file()
    held = [requests_read, requests_write, answers_read, answers_write, results]
    solution: Launch | None = None
    try:
        solution = launch(
            isolation,
            {"main.py": code, **HARNESS_FILES},
            HARNESS,
            ["solution", str(requests_read), str(answers_write)],
            "",
            limits,
            pass_fds=(requests_read, answers_write),
        )
        for fd in (requests_read, answers_write):
            os.close(fd)
            held.remove(fd)
        checker = launch(
            isolation,
            {"tests.py": tests, **HARNESS_FILES},
            HARNESS,
            ["tests", str(requests_write), str(answers_read), str(results)],
            "",
            limits,
            pass_fds=(requests_write, answers_read, results),
        )
    except BaseException:
        if solution is not None:
            finish(solution, 0.0)
        os.close(results)
        raise
    finally:
        for fd in held:
            if fd != results:
                os.close(fd)
    tests_run = finish(checker, solution.started + limits.wall_seconds)
    # once the tests' process is gone the solution's sees its requests end and exits by itself
    solution_run = finish(solution, solution.started + limits.wall_seconds)
    try:
        reported = read_descriptor(results, RESULTS_LIMIT_BYTES)
    finally:
        os.close(results)
    for run in (tests_run, solution_run):
        if not run.started:
            detail = run.stderr.strip().splitlines()[-1:] or [run.reason or "no output"]
            raise VerifierError(f"the sandbox could not start the program: {detail[0][:300]}")
    outcomes = _verdicts(reported, len(labels), tests_run)
    return TestVerdicts(outcomes, tests_run, solution_run)


def _verdicts(reported: bytes, count: int, tests_run: SandboxResult) -> list[tuple[bool, str]]:
    """One (passed, reason) per expected test from the tests' process's report lines.

    VerifierError when the tests' own imports fail (unscorable, never 0.0).
    """
    outcomes: dict[int, tuple[bool, str]] = {}
    missing = tests_run.reason or "the tests' process ended before this test"
    for line in reported.decode("utf-8", errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if "setup" in item:
            missing = f"setup `{item['setup']}` failed: {item['reason']}"
            if str(item["reason"]).startswith(("ModuleNotFoundError", "ImportError")):
                # the tests need a module the sandbox lacks: the task's problem, not the program's
                raise VerifierError(f"the task's tests cannot run here: {missing}"[:400])
        elif isinstance(item.get("test"), int) and 0 <= item["test"] < count:
            outcomes.setdefault(item["test"], (item.get("ok") is True, str(item.get("reason"))))
    return [outcomes.get(index, (False, missing)) for index in range(count)]


def require_isolation(isolation: Isolation, allow_unsandboxed: bool) -> None:
    """VerifierError when the machine cannot isolate runs and unsandboxed runs are not allowed."""
    if not isolation.isolated and not allow_unsandboxed:
        raise VerifierError(
            "code execution needs network isolation (user and network namespaces), unavailable "
            "here; set config allowUnsandboxed: true to run without it"
        )


def run_python(
    code: str,
    stdin: str = "",
    limits: SandboxLimits | None = None,
    allow_unsandboxed: bool = False,
    isolation: Isolation | None = None,
) -> SandboxResult:
    """Run `code` as a Python program with `stdin` (isolation: the probed one by default).

    VerifierError when it cannot be isolated, or when the sandbox failed before the program
    started (a failure row, never a score of the program).
    """
    isolation = isolation or detect_isolation()
    require_isolation(isolation, allow_unsandboxed)
    result = run_once(isolation, code, stdin, limits or SandboxLimits())
    if not result.started:
        detail = result.stderr.strip().splitlines()[-1:] or [result.reason or "no output"]
        raise VerifierError(f"the sandbox could not start the program: {detail[0][:300]}")
    return result

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
unsandboxed runs.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import marshal
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gym_operator.verify.base import VerifierError

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
HARNESS = Path(__file__).with_name("sandbox_harness.py")
RESULTS_LIMIT_BYTES = 4 * 1024 * 1024
# Runs first inside the sandbox: one byte on the status pipe proves the program itself started,
# so a failing wrapper (never the program) can be told apart from a failing program.
BOOTSTRAP = (
    "import os, runpy, sys\n"
    "status = int(sys.argv[1])\n"
    "os.write(status, b'1')\n"
    "os.close(status)\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
# Root runs each program as its own unprivileged uid (a range unlikely to be in use), so process
# limits, which count per uid, never let one run's fork bomb starve a concurrent run.
RUN_UID_BASE = 200_000
RUN_UID_SLOTS = 50_000
_RUN_COUNTER = itertools.count()
OUTPUT_LIMIT_BYTES = 64 * 1024
TEARDOWN_SECONDS = 5.0
# exit code of a run its pid 1 ended for using more memory (all processes together) than allowed
MEMORY_KILLED = -1000
# the run's own pid 1 ends it this long after the wall limit, even if the server is gone
WATCHDOG_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 512 * 1024 * 1024
    file_bytes: int = 16 * 1024 * 1024
    disk_bytes: int = 64 * 1024 * 1024
    processes: int = 32
    descriptors: int = 256


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended: exit code (negative: killed by that signal), output, and why."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    started: bool = True

    @property
    def ok(self) -> bool:
        """The program exited 0 within its limits."""
        return self.exit_code == 0 and not self.timed_out

    @property
    def reason(self) -> str:
        """A short human reason for a failed run ("" when ok)."""
        if self.timed_out:
            return "wall-clock timeout"
        if self.exit_code == MEMORY_KILLED:
            return "killed: memory limit (all of the run's processes together)"
        if self.exit_code == -signal.SIGXCPU or self.exit_code == -signal.SIGKILL:
            return "killed: CPU time limit"
        if self.exit_code == -signal.SIGXFSZ:
            return "killed: file size limit"
        if self.exit_code < 0:
            return f"killed by signal {signal.Signals(-self.exit_code).name}"
        if self.exit_code != 0:
            last = self.stderr.strip().splitlines()[-1:] or [""]
            return f"exit code {self.exit_code}: {last[0][:300]}"
        return ""


@dataclass(frozen=True)
class Isolation:
    """What this machine offers: namespaces, Landlock, a private directory, the interpreter."""

    unshare: list[str] | None  # the namespaces a run gets (user, net, mount, ipc, pid)
    landlock: bool
    python: str
    read_roots: tuple[str, ...] = ()
    private_dir: bool = False

    @property
    def isolated(self) -> bool:
        """Network isolation is in place (the namespaces work)."""
        return self.unshare is not None


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
        result = _run(isolation, "print('ok')", "", SandboxLimits(wall_seconds=20))
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


def run_uid() -> int:
    """A uid for the next run: distinct per process and per run, recycled after many runs."""
    slot = (os.getpid() * 97 + next(_RUN_COUNTER)) % RUN_UID_SLOTS
    return RUN_UID_BASE + slot


def uid_tasks(uid: int) -> int:
    """Processes and threads owned by `uid` (they all count against RLIMIT_NPROC)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                continue
    return count


def _prepare_workdir(files: dict[str, str], uid: int) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="gymops-sandbox-"))
    for name, text in files.items():
        (workdir / name).write_text(text, encoding="utf-8")
    if os.geteuid() == 0:
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, uid, uid)
    return workdir


def anonymous_file(content: bytes = b"") -> int:
    """A regular file with no name (O_TMPFILE where the kernel has it): a descriptor only.

    The run writes its output into such files the server opened before it started; nothing the
    program does to names in its directory can swap them for a symlink, a FIFO or a device.
    """
    handle = tempfile.TemporaryFile()
    fd = os.dup(handle.fileno())
    handle.close()
    if content:
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_descriptor(fd: int, limit: int = OUTPUT_LIMIT_BYTES) -> bytes:
    """Up to `limit` bytes from the start of a regular file the server opened (b"" otherwise)."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.pread(fd, limit, 0)
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_run(proc: subprocess.Popen[bytes], timed_out: bool) -> None:
    """End the run's process tree; the namespace wrapper reaps its own tree when it can.

    On a timeout the wrapper's child (pid 1 of the run's pid namespace) is killed first, so the
    kernel tears the namespace down and the wrapper reaps it and exits: nothing is left as an
    orphan that would still count against the next run's process limit. Then the whole process
    group is killed, for runs without namespaces.
    """
    if timed_out:
        for child in _children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=TEARDOWN_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _reported_end(report_read: int, returncode: int) -> tuple[int, bool]:
    """(exit code, watchdog fired) as the run's pid 1 reported it, else the wrapper's code."""
    os.set_blocking(report_read, False)
    try:
        report = os.read(report_read, 64).decode("ascii", errors="replace").split()
    except BlockingIOError:
        report = []
    finally:
        os.close(report_read)
    if report == ["timeout"]:
        return -signal.SIGKILL, True
    if report == ["memory"]:
        return MEMORY_KILLED, False
    if len(report) == 2 and report[1].lstrip("-").isdigit():
        code = int(report[1])
        return (-code if report[0] == "signal" else code), False
    return returncode, False


def _program_started(status_read: int) -> bool:
    os.set_blocking(status_read, False)
    try:
        return os.read(status_read, 1) == b"1"
    except BlockingIOError:
        return False
    finally:
        os.close(status_read)


@dataclass
class Launch:
    """A started run: its wrapper process, work directory and the descriptors of its output."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    stdout: int
    stderr: int
    status_read: int
    report_read: int
    started: float


def launch(
    isolation: Isolation,
    files: dict[str, str],
    script: str,
    args: list[str],
    stdin: str,
    limits: SandboxLimits,
    pass_fds: tuple[int, ...] = (),
) -> Launch:
    """Start `script` (in the work directory holding `files`) with `args`, sandboxed.

    `pass_fds` are inherited by the program (their numbers are what it gets). stdin, stdout and
    stderr are files with no name, opened here; the caller must `finish` the launch.
    """
    root = os.geteuid() == 0
    uid = run_uid() if root else os.geteuid()
    workdir = _prepare_workdir(files, uid)
    # without root the limit counts the server's own processes and threads of the same uid too
    processes = limits.processes if root else limits.processes + uid_tasks(uid)
    status_read, status_write = os.pipe()
    report_read, report_write = os.pipe()
    command = [isolation.python, "-I", "-c", BOOTSTRAP]
    plan = {
        "workdir": str(workdir),
        "parent": os.getpid(),
        "namespaces": isolation.unshare,
        "private_dir": isolation.private_dir,
        "report_fd": report_write,
        "watchdog_seconds": limits.wall_seconds + WATCHDOG_GRACE_SECONDS,
        "command": [*command, str(status_write), script, *args],
        "landlock": isolation.landlock,
        "read_roots": [*isolation.read_roots, str(LAUNCHER.parent)] if isolation.read_roots else [],
        "uid": uid,
        "cpu_seconds": limits.cpu_seconds,
        "memory_bytes": limits.memory_bytes,
        "file_bytes": limits.file_bytes,
        "disk_bytes": limits.disk_bytes,
        "processes": processes,
        "descriptors": limits.descriptors,
    }
    stdin_fd = anonymous_file(stdin.encode("utf-8"))
    out, err = anonymous_file(), anonymous_file()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(LAUNCHER), marshal.dumps(plan).hex()],
            stdin=stdin_fd,
            stdout=out,
            stderr=err,
            env={},
            cwd=workdir,
            start_new_session=True,
            close_fds=True,
            pass_fds=(status_write, report_write, *pass_fds),
        )
    except BaseException:
        for fd in (out, err, status_read, report_read):
            os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        for fd in (status_write, report_write, stdin_fd):
            os.close(fd)
    return Launch(proc, workdir, out, err, status_read, report_read, time.monotonic())


def finish(run: Launch, deadline: float) -> SandboxResult:
    """Wait for the run until `deadline` (time.monotonic), end its process tree, read its output."""
    timed_out = False
    try:
        try:
            run.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_run(run.proc, timed_out)
        exit_code, watchdog_fired = _reported_end(run.report_read, run.proc.returncode)
        return SandboxResult(
            exit_code=exit_code,
            stdout=read_descriptor(run.stdout).decode("utf-8", errors="replace"),
            stderr=read_descriptor(run.stderr).decode("utf-8", errors="replace"),
            timed_out=timed_out or watchdog_fired,
            seconds=time.monotonic() - run.started,
            started=_program_started(run.status_read),
        )
    finally:
        os.close(run.stdout)
        os.close(run.stderr)
        shutil.rmtree(run.workdir, ignore_errors=True)


def _run(isolation: Isolation, code: str, stdin: str, limits: SandboxLimits) -> SandboxResult:
    run = launch(isolation, {"main.py": code}, "main.py", [], stdin, limits)
    return finish(run, run.started + limits.wall_seconds)


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
            {"main.py": code},
            str(HARNESS),
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
            {"tests.py": tests},
            str(HARNESS),
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
    result = _run(isolation, code, stdin, limits or SandboxLimits())
    if not result.started:
        detail = result.stderr.strip().splitlines()[-1:] or [result.reason or "no output"]
        raise VerifierError(f"the sandbox could not start the program: {detail[0][:300]}")
    return result

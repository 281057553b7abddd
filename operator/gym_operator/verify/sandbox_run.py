"""One sandboxed run: its limits, how it is launched through `sandbox_launcher.py`, how it ends.

A run gets a fresh work directory, an empty environment and `python -I`; stdin, stdout and stderr
are nameless files the server opened before the run, read back by descriptor only, so nothing the
program does to names in its directory can swap them. Which isolation a run gets (namespaces,
Landlock, the interpreter) is decided by `verify/sandbox.py`, which probes the machine.
"""

from __future__ import annotations

import contextlib
import itertools
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

LAUNCHER = Path(__file__).with_name("sandbox_launcher.py")
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


def run_once(isolation: Isolation, code: str, stdin: str, limits: SandboxLimits) -> SandboxResult:
    """Run `code` as main.py with `stdin` once, to its end or its wall-clock limit."""
    run = launch(isolation, {"main.py": code}, "main.py", [], stdin, limits)
    return finish(run, run.started + limits.wall_seconds)

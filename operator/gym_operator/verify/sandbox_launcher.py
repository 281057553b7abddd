"""Sandbox launcher: applies limits and isolation to itself, then execs the sandboxed command.

Run as `python -I -S sandbox_launcher.py <plan>` (a marshalled dict, in hex: no imports to read
it) in a fresh session by `sandbox.py`; uses the standard library only. First resource limits
(CPU, address space, file size, processes, descriptors, no message queues), dropping root to an
unprivileged uid and death with its parent; then unshare(2) into new user (this uid as its
root), network, mount, IPC and pid namespaces, and a fork: the child is pid 1 of the new pid
namespace. Pid 1 mounts a size-limited tmpfs of its own over the work directory (every file,
unlinked or not, counts against it) and a /proc of its own, then forks the program: it takes
Landlock (writes only beneath the work directory, reads only beneath the given roots, no TCP,
signals scoped), a seccomp filter (no memfd, no SysV shared memory), drops every capability and
execs the program. Pid 1 stays behind as the watchdog that reports how the program ended and
exits, which kills everything in the namespace whatever became of the server that started it,
at the wall-clock deadline or when the resident memory of all the run's processes together
exceeds the memory limit (summed every 50 ms from the namespace's own /proc). Without
namespaces the limits and Landlock apply to the program directly.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import resource
import select
import signal
import struct
import sys
import time

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_MODE_FILTER = 2
_FS_WRITE_FILE = 1 << 1
_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
_FS_FILE_ACCESS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14)  # the rights a file rule may hold
# every access that creates, changes or removes something (ABI 1), plus REFER (2), TRUNCATE (3).
_FS_MODIFY_V1 = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))
_NET_ALL_TCP = (1 << 0) | (1 << 1)
_SCOPE_ABSTRACT_UNIX_SOCKET_AND_SIGNAL = (1 << 0) | (1 << 1)
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 1 << 14, 1 << 18
# (audit arch, memfd_create, memfd_secret, shmget) by machine
_SECCOMP_ARCH = {
    "x86_64": (0xC000003E, 319, 447, 29),
    "aarch64": (0xC00000B7, 279, 447, 194),
}
_CLONE = {  # namespace kind: unshare(2) flag
    "user": 0x10000000,
    "net": 0x40000000,
    "mount": 0x00020000,
    "ipc": 0x08000000,
    "pid": 0x20000000,
}
Plan = dict  # the marshalled plan: str keys, plain values (no typing import: startup time)
INODES = 4096
EXIT_TIMEOUT = 137
TICK_SECONDS = 0.05  # how often pid 1 sums the run's memory


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi(libc: ctypes.CDLL) -> int:
    """The kernel's Landlock ABI version (0: not available)."""
    version = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


def apply_landlock(writable: list[str], readable: list[str]) -> int:
    """Confine the process: changes only beneath `writable`; reads too, when `readable` is given.

    /proc stays readable and writable (unshare writes its uid maps there) and /dev/null
    writable; with `readable`, everything outside it and `writable` is unreadable.
    """
    libc = _libc()
    abi = landlock_abi(libc)
    if abi < 1:
        return 0
    modify = _FS_MODIFY_V1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0)
    read = _FS_READ if readable else 0
    handled = modify | read
    # ABI 4 adds TCP rules (none given: all denied); ABI 6 scopes signals and abstract unix
    # sockets to the sandbox (it cannot signal or connect to the server's processes).
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET_AND_SIGNAL if abi >= 6 else 0
    attr = _RulesetAttr(handled, _NET_ALL_TCP if abi >= 4 else 0, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    rules = [(path, handled) for path in writable]
    rules += [("/proc", _FS_WRITE_FILE | read), ("/dev/null", _FS_WRITE_FILE | read)]
    rules += [(path, read) for path in readable if os.path.exists(path)]
    for path, access in rules:
        _add_rule(libc, ruleset, path, access & handled)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)
    return abi


def _add_rule(libc: ctypes.CDLL, ruleset: int, path: str, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        allowed = access if os.path.isdir(path) else access & _FS_FILE_ACCESS
        rule = _PathBeneathAttr(allowed, fd)
        added = libc.syscall(
            _SYS_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0
        )
        if added < 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path} failed")
    finally:
        os.close(fd)


def seccomp_program(machine: str) -> bytes | None:
    """A BPF filter refusing (EPERM) memfd_create, memfd_secret, shmget and x32 calls."""
    if machine not in _SECCOMP_ARCH:
        return None
    arch, *denied = _SECCOMP_ARCH[machine]
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM

    def op(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    checks = len(denied)
    program = [
        op(0x20, 0, 0, 4),  # load the audit arch
        op(0x15, 1, 0, arch),  # expected arch: go on
        op(0x06, 0, 0, deny),  # any other arch: refuse
        op(0x20, 0, 0, 0),  # load the call number
        op(0x35, checks + 1, 0, 0x40000000),  # x32 calls: refuse
    ]
    program += [op(0x15, checks - i, 0, number) for i, number in enumerate(denied)]
    program += [op(0x06, 0, 0, allow), op(0x06, 0, 0, deny)]
    return b"".join(program)


def apply_seccomp() -> bool:
    """Install the filter (no_new_privs first); False where the machine is not known."""
    program = seccomp_program(os.uname().machine)
    if program is None:
        return False
    libc = _libc()
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    prog = _SockFprog(len(program) // 8, program)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")
    return True


def drop_capabilities() -> None:
    """Empty the bounding set, so the exec'd program holds no capability, even as uid 0."""
    libc = _libc()
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break


def apply_limits(plan: Plan) -> None:
    """CPU seconds, address space, file size, processes, descriptors; no cores, no mqueues."""
    cpu = int(plan["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (plan["memory_bytes"], plan["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (plan["file_bytes"], plan["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (plan["processes"], plan["processes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (plan["descriptors"], plan["descriptors"]))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_root(uid: int) -> None:
    """Root runs the untrusted program as `uid` (process limits do not bind root)."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def die_with_parent(parent: int) -> None:
    """SIGKILL when the process that started the run dies (set after the last uid change)."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(EXIT_TIMEOUT)


def private_directory(plan: Plan) -> bool:
    """A tmpfs of `disk_bytes` over the work directory (its files copied in), and a new /proc
    (True when it could be mounted)."""
    libc = _libc()
    workdir = plan["workdir"]
    files = {}
    for name in os.listdir(workdir):
        with open(os.path.join(workdir, name), "rb") as handle:
            files[name] = handle.read()
    libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None)
    options = f"size={plan['disk_bytes']},nr_inodes={INODES},mode=0700".encode()
    if libc.mount(b"tmpfs", workdir.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0:
        raise OSError(ctypes.get_errno(), "mounting the run's tmpfs failed")
    proc_flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    own_proc = libc.mount(b"proc", b"/proc", b"proc", proc_flags, None) == 0
    os.chdir(workdir)
    for name, data in files.items():
        with open(name, "wb") as handle:
            handle.write(data)
    return own_proc


def confine_and_exec(plan: Plan) -> None:
    """Landlock, seccomp, no capabilities; then exec the program."""
    if plan["landlock"]:
        apply_landlock([plan["workdir"]], plan["read_roots"])
    apply_seccomp()
    drop_capabilities()
    os.execv(plan["command"][0], plan["command"])


def resident_bytes() -> int:
    """Proportional resident memory of every process in this pid namespace but pid 1."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry == "1":
            continue
        try:
            with open(f"/proc/{entry}/smaps_rollup", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            continue
    return total


def watch(child: int, seconds: float, report: int, memory_limit: int) -> None:
    """Wait for `child` until the deadline, keeping the namespace's memory under `memory_limit`
    (0: not watched); report how it ended on `report`, then exit (pid 1 exiting kills every
    process of the namespace)."""
    pidfd = os.pidfd_open(child)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.write(report, b"timeout")
            os._exit(EXIT_TIMEOUT)
        ready, _, _ = select.select([pidfd], [], [], min(left, TICK_SECONDS))
        if ready:
            break
        if memory_limit and resident_bytes() > memory_limit:
            os.write(report, b"memory")
            os._exit(EXIT_TIMEOUT)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        os.write(report, f"signal {os.WTERMSIG(status)}".encode())
        os._exit(128 + os.WTERMSIG(status))
    os.write(report, f"exit {os.waitstatus_to_exitcode(status)}".encode())
    os._exit(os.waitstatus_to_exitcode(status))


def inside(plan: Plan) -> None:
    """Pid 1 of the run's namespaces: private directory, then the program and its watchdog."""
    own_proc = private_directory(plan) if plan["private_dir"] else False
    report = int(plan["report_fd"])
    child = os.fork()
    if child == 0:
        os.close(report)
        confine_and_exec(plan)
    # the sum is taken over this namespace's own /proc only (else it would count the host's)
    memory_limit = int(plan["memory_bytes"]) if own_proc else 0
    watch(child, float(plan["watchdog_seconds"]), report, memory_limit)


def enter_namespaces(kinds: list[str]) -> None:
    """unshare(2) into new namespaces of `kinds`; in a new user namespace this uid is root."""
    uid, gid = os.getuid(), os.getgid()
    libc = _libc()
    # a process that changed its uid is not dumpable: its /proc/self maps would stay root's
    libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
    flags = 0
    for kind in kinds:
        flags |= _CLONE[kind]
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), f"unshare of {' '.join(kinds)} namespaces failed")
    if "user" in kinds:
        maps = (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1"))
        for name, text in maps:
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)


def run_pid_one(plan: Plan) -> None:
    """Fork pid 1 of the new pid namespace (it runs `inside`), wait for it and exit as it did;
    pid 1 dies with this process."""
    child = os.fork()
    if child == 0:
        try:
            _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            inside(plan)
        finally:
            os._exit(126)
    os.close(int(plan["report_fd"]))
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


def main() -> None:
    """Apply the plan given as the last argument, then run the command in its namespaces."""
    plan = marshal.loads(bytes.fromhex(sys.argv[-1]))
    os.chdir(plan["workdir"])
    apply_limits(plan)
    drop_root(plan["uid"])
    die_with_parent(int(plan["parent"]))
    if plan["namespaces"]:
        enter_namespaces(plan["namespaces"])
        run_pid_one(plan)
    os.close(int(plan["report_fd"]))
    confine_and_exec(plan)


if __name__ == "__main__":
    main()

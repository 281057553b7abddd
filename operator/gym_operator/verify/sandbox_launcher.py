"""Sandbox launcher: applies limits and isolation to itself, then execs the sandboxed command.

Run as `python -I -S sandbox_launcher.py '<json plan>'` in a fresh session by `sandbox.py`; uses
the standard library only. In order: resource limits, dropping root to an unprivileged uid,
Landlock (writes only beneath the work directory, reads only beneath the given roots, no TCP)
where the kernel has it, then exec.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from typing import Any

_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_FS_WRITE_FILE = 1 << 1
_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # EXECUTE, READ_FILE, READ_DIR
_FS_FILE_ACCESS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14)  # the rights a file rule may hold
# every access that creates, changes or removes something (ABI 1), plus REFER (2), TRUNCATE (3).
_FS_MODIFY_V1 = sum(1 << bit for bit in (1, 4, 5, 6, 7, 8, 9, 10, 11, 12))
_NET_ALL_TCP = (1 << 0) | (1 << 1)


_SCOPE_ABSTRACT_UNIX_SOCKET_AND_SIGNAL = (1 << 0) | (1 << 1)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi(libc: ctypes.CDLL) -> int:
    """The kernel's Landlock ABI version (0: not available)."""
    version = libc.syscall(_SYS_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)
    return max(int(version), 0)


def apply_landlock(writable: list[str], readable: list[str]) -> int:
    """Confine the process: changes only beneath `writable`; reads too, when `readable` is given.

    /proc stays readable and writable (unshare writes its uid maps there) and /dev/null
    writable; with `readable`, everything outside it and `writable` is unreadable.
    """
    libc = ctypes.CDLL(None, use_errno=True)
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


def apply_limits(plan: dict[str, Any]) -> None:
    """CPU seconds, address space, file size, process count; no core dumps."""
    cpu = int(plan["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (plan["memory_bytes"], plan["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (plan["file_bytes"], plan["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (plan["processes"], plan["processes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_root(uid: int) -> None:
    """Root runs the untrusted program as `uid` (process limits do not bind root)."""
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def main() -> None:
    """Apply the plan given as the first argument, then exec its command."""
    plan = json.loads(sys.argv[1])
    os.chdir(plan["workdir"])
    if plan["landlock"]:
        apply_landlock([plan["workdir"]], plan["read_roots"])
    apply_limits(plan)
    drop_root(plan["uid"])
    os.execv(plan["command"][0], plan["command"])


if __name__ == "__main__":
    main()

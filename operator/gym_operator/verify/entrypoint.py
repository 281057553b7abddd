"""`gymops verify-server`: serve one built-in verifier (NeMo Gym resource-server protocol)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

from gym_operator.api.verifiers import check_config
from gym_operator.verify.server import VerifierSettings, available_cpus, start_server

log = logging.getLogger(__name__)


def load_config(value: str | None) -> dict[str, Any]:
    """The verifier config from JSON text or `@file` (JSON); ValueError names the problem."""
    if not value:
        return {}
    text = Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--config is not JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError("--config must be a JSON object")
    return config


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
    """Entry point of `gymops verify-server`."""
    try:
        config = load_config(args.config)
        problems = check_config(args.verifier, config)
        if problems:
            raise ValueError("--config: " + "; ".join(problems))
        settings = VerifierSettings(
            builtin=args.verifier,
            config=config,
            workers=args.workers or available_cpus(),
            timeout_seconds=args.timeout,
        )
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        asyncio.run(serve(settings, args.host, args.port))
    except KeyError as exc:
        log.error("%s", exc.args[0])
        return 2
    return 0

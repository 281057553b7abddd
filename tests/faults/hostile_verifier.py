"""A verifier server process for the hostile-input tests: `python hostile_verifier.py SETTINGS`.

SETTINGS is a JSON object of VerifierSettings fields plus `nofile` (the RLIMIT_NOFILE to run
under). Prints `URL <base url>` once serving; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys

from gym_operator.verify.server import VerifierSettings, start_server


async def serve(settings: VerifierSettings) -> None:
    runner, url = await start_server(settings)
    print(f"URL {url}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    options = json.loads(sys.argv[1])
    nofile = options.pop("nofile", None)
    if nofile:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    asyncio.run(serve(VerifierSettings(**options)))


if __name__ == "__main__":
    main()

"""`gymops view URI...`: open each prefix (a RolloutJob output or a Dataset), serve, open a browser.

A prefix with `_DATASET.json` is a Dataset; one with `_job.json` or shard manifests is a
RolloutJob output. Job prefixes are indexed in the background; the index is cached on local disk.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import webbrowser
from pathlib import Path

from aiohttp import web
from rich.console import Console

from gym_operator.storage import layout
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI, parse_uri
from gym_operator.viewer import cache
from gym_operator.viewer.catalog import Catalog, KubernetesLister, ListingError, View
from gym_operator.viewer.dataset import RESULT_FILE, DatasetView
from gym_operator.viewer.job import JobView
from gym_operator.viewer.server import make_app

log = logging.getLogger(__name__)
EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


class NotAnOutput(ValueError):
    """A URI that holds neither a RolloutJob output nor a Dataset."""


def open_view(storage: Storage, uri: str, cache_dir: Path | None) -> View:
    """A view over `uri`, by what the prefix holds."""
    prefix = parse_uri(uri)
    if storage.exists(prefix.join(RESULT_FILE)):
        return DatasetView(storage, prefix)
    if storage.exists(prefix.join(layout.JOB_RECORD)) or _has_manifest(storage, prefix):
        return JobView(storage, prefix, cache_dir)
    raise NotAnOutput(
        f"{uri}: neither a RolloutJob output ({layout.JOB_RECORD}, shard-*/{layout.MANIFEST})"
        f" nor a Dataset ({RESULT_FILE}) is there"
    )


def _has_manifest(storage: Storage, prefix: StorageURI) -> bool:
    return any(obj.name == layout.MANIFEST for obj in storage.list(prefix))


async def serve(catalog: Catalog, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Start the server; (runner, base URL)."""
    runner = web.AppRunner(make_app(catalog), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return runner, f"http://{shown}:{bound[1]}/"


async def _run(catalog: Catalog, args: argparse.Namespace, console: Console) -> None:
    runner, url = await serve(catalog, args.host, args.port)
    console.print(f"gymops view: serving at [bold]{url}[/bold] (Ctrl-C stops)")
    try:
        entries = await asyncio.to_thread(catalog.entries)
    except ListingError as exc:  # served anyway: the page names it, and lists again on each look
        log.warning("%s", exc)
        entries = []
    for entry in entries:
        console.print(f"  {entry['id']}: {entry['kind']} {entry['uri']}")
    if not args.no_browser:
        webbrowser.open(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _catalog(args: argparse.Namespace, storage: Storage) -> Catalog:
    cache_dir = None if args.no_cache else Path(args.cache_dir or cache.default_dir())
    catalog = Catalog(storage, cache_dir, args.refresh)
    if getattr(args, "kubernetes", False):
        catalog.lister = KubernetesLister(args.namespace or _own_namespace())
    for uri in args.uri:
        view = open_view(storage, uri, cache_dir)
        if isinstance(view, JobView):
            view.start(interval=args.refresh)
        catalog.add(view)
    return catalog


def _own_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else "default"


def main(args: argparse.Namespace) -> int:
    """Entry point of `gymops view`; returns the exit code."""
    console = Console()
    storage = Storage()
    if not args.uri and not getattr(args, "kubernetes", False):
        console.print("[red]gymops view: name a prefix to open, or --kubernetes[/red]")
        return EXIT_BAD_INPUT
    try:
        catalog = _catalog(args, storage)
    except (NotAnOutput, ValueError) as exc:
        console.print(f"[red]gymops view: {exc}[/red]")
        return EXIT_BAD_INPUT
    try:
        asyncio.run(_run(catalog, args, console))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        console.print(f"[red]gymops view: cannot serve on {args.host}:{args.port}: {exc}[/red]")
        return EXIT_ERROR
    finally:
        catalog.stop()
        storage.close()
    return EXIT_OK

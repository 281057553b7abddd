"""The viewer's HTTP server: the static front end and a JSON API over the opened prefixes.

Every handler runs its storage and numpy work in a thread, so a slow S3 read never stalls the
page. Routes, with V the number of an opened prefix:
  /api/views                          what was opened
  /api/v/V/status|overview            a job's state and overview numbers (refreshes while it runs)
  /api/v/V/rollouts?filters           a page of the rollouts table
  /api/v/V/tasks?sort=pass_rate       a page of tasks with their pass rates
  /api/v/V/task/T                     every repeat of task T, rendered
  /api/v/V/chart/NAME.svg             rewards, pass_rates, task_types, throughput
  /api/v/V/dataset                    a dataset's summary and card
  /api/v/V/drows?split=&offset=       a page of dataset rows
  /api/v/V/file/NAME                  a dataset file by bare name (the card's images)
  /rolloutjobs/NAMESPACE/NAME         in a cluster: redirects to that RolloutJob's page (the
  /datasets/NAMESPACE/NAME            stable link of status.viewerPath), or that Dataset's
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from gym_operator.storage.store import ObjectNotFound
from gym_operator.viewer import charts, conversation, query, stats
from gym_operator.viewer.catalog import Catalog, ListingError
from gym_operator.viewer.dataset import DatasetView
from gym_operator.viewer.index import KINDS, TOOLS, TRUNCATED
from gym_operator.viewer.job import JobView
from gym_operator.viewer.search import TextSearch

log = logging.getLogger(__name__)
CATALOG = web.AppKey("catalog", Catalog)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def static_dir() -> Path:
    """The front end shipped in the package."""
    return Path(str(importlib.resources.files("gym_operator.viewer").joinpath("static")))


async def _view(request: web.Request, kind: str) -> Any:
    catalog: Catalog = request.app[CATALOG]
    number = int(request.match_info["v"])
    view = await asyncio.to_thread(catalog.view, number)
    if view.kind != kind:
        raise web.HTTPBadRequest(text=f"view {number} is a {view.kind}, not a {kind}")
    return view


def _json_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except query.QueryError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ObjectNotFound as exc:
            return web.json_response({"error": f"not found: {exc}"}, status=404)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except ListingError as exc:
            return web.json_response({"error": str(exc)}, status=502)

    return wrapped


@_json_errors
async def views(request: web.Request) -> web.Response:
    catalog: Catalog = request.app[CATALOG]
    return web.json_response(await asyncio.to_thread(catalog.entries))


@_json_errors
async def overview(request: web.Request) -> web.Response:
    view: JobView = await _view(request, "job")

    def compute() -> dict[str, Any]:
        numbers, version = view.overview()
        return {"status": view.status(), "version": version, **numbers}

    return web.json_response(await asyncio.to_thread(compute))


def _row_summary(view: JobView, columns: dict[str, Any], i: int, types: Any) -> dict[str, Any]:
    row = view.row(int(columns["part"][i]), int(columns["line"][i]))
    reward = float(columns["reward"][i])
    failure = int(columns["failure"][i])
    code = int(types[i])
    part = view.index.part(int(columns["part"][i]))
    return {
        "kind": KINDS[int(columns["kind"][i])],
        "task": int(columns["task"][i]),
        "repeat": int(columns["repeat"][i]),
        "shard": part.shard,
        "reward": None if np.isnan(reward) else reward,
        "failureClass": view.index.tables.failures[failure] if failure >= 0 else None,
        "taskType": view.index.tables.task_types[code] if code >= 0 else "-",
        "truncated": bool(columns["flags"][i] & TRUNCATED),
        "toolCalls": bool(columns["flags"][i] & TOOLS),
        "tokens": int(columns["tokens"][i]) if columns["tokens"][i] >= 0 else None,
        "prompt": conversation.prompt_preview(row),
        "answer": conversation.answer_preview(row),
    }


@_json_errors
async def rollouts(request: web.Request) -> web.Response:
    view: JobView = await _view(request, "job")
    q = query.RowQuery.from_params(request.query)
    search: TextSearch = request.app[SEARCH]

    def compute() -> dict[str, Any]:
        types = view.row_types()
        columns, _, _ = view.index.snapshot()
        types = types if len(types) == len(columns["kind"]) else stats.row_types(columns)
        mask = query.mask_of(columns, view.index.tables, q, types)
        if q.text:
            mask &= search.matches(view, q.text, len(mask))
        ids = query.order_of(columns, np.flatnonzero(mask), q.sort, q.desc)
        page = ids[q.offset : q.offset + q.limit]
        return {
            "total": int(len(ids)),
            "offset": q.offset,
            "rows": [_row_summary(view, columns, int(i), types) for i in page],
            "failureClasses": view.index.tables.failures,
            "taskTypes": view.index.tables.task_types,
        }

    return web.json_response(await asyncio.to_thread(compute))


@_json_errors
async def tasks(request: web.Request) -> web.Response:
    view: JobView = await _view(request, "job")
    sort = request.query.get("sort", "pass_rate")
    if sort not in ("pass_rate", "task"):
        raise query.QueryError(f"sort: {sort!r} is not pass_rate or task")
    offset = max(0, int(request.query.get("offset", "0")))
    limit = min(query.MAX_LIMIT, max(1, int(request.query.get("limit", "50"))))

    def compute() -> dict[str, Any]:
        columns, _, _ = view.index.snapshot()
        threshold = view.pass_threshold()
        return stats.task_table(columns, view.index.tables, threshold, offset, limit, sort)

    return web.json_response(await asyncio.to_thread(compute))


@_json_errors
async def task(request: web.Request) -> web.Response:
    view: JobView = await _view(request, "job")
    number = int(request.match_info["task"])

    def compute() -> dict[str, Any]:
        columns, _, _ = view.index.snapshot()
        ids = np.flatnonzero(columns["task"] == number)
        ids = ids[np.lexsort((columns["kind"][ids], columns["repeat"][ids]))]
        if not len(ids):
            raise ObjectNotFound(f"task {number}")
        repeats = []
        for i in ids:
            row = view.row(int(columns["part"][i]), int(columns["line"][i]))
            repeats.append(
                {
                    "repeat": int(columns["repeat"][i]),
                    "kind": KINDS[int(columns["kind"][i])],
                    **conversation.detail(row),
                }
            )
        threshold = view.pass_threshold()
        rewards = [r["reward"] for r in repeats if r["reward"] is not None]
        passed = sum(r >= threshold for r in rewards)
        return {
            "task": number,
            "passThreshold": threshold,
            "passed": passed,
            "rollouts": len(rewards),
            "repeats": repeats,
        }

    return web.json_response(await asyncio.to_thread(compute))


@_json_errors
async def chart(request: web.Request) -> web.Response:
    view: JobView = await _view(request, "job")
    name = request.match_info["name"]
    if name not in charts.CHARTS:
        raise web.HTTPNotFound(text=f"no chart {name}")

    def compute() -> bytes:
        return charts.draw(name, view.overview()[0], view.pass_threshold())

    body = await asyncio.to_thread(compute)
    return web.Response(body=body, content_type="image/svg+xml")


@_json_errors
async def dataset(request: web.Request) -> web.Response:
    view: DatasetView = await _view(request, "dataset")
    return web.json_response(await asyncio.to_thread(view.summary))


@_json_errors
async def dataset_rows(request: web.Request) -> web.Response:
    view: DatasetView = await _view(request, "dataset")
    split = request.query.get("split", "train")
    offset = max(0, int(request.query.get("offset", "0")))
    limit = min(query.MAX_LIMIT, max(1, int(request.query.get("limit", "20"))))
    return web.json_response(await asyncio.to_thread(view.rows, split, offset, limit))


@_json_errors
async def dataset_file(request: web.Request) -> web.Response:
    view: DatasetView = await _view(request, "dataset")
    name = request.match_info["name"]
    body = await asyncio.to_thread(view.file, name)
    kind = "image/png" if name.endswith(".png") else "text/plain"
    return web.Response(body=body, content_type=kind)


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(static_dir() / "index.html")


SEARCH = web.AppKey("search", TextSearch)
RESOURCE_KINDS = {"rolloutjobs": ("job", "RolloutJob"), "datasets": ("dataset", "Dataset")}


async def resource_page(request: web.Request) -> web.Response:
    """A listed resource's page, by namespace and name: a redirect to its view."""
    catalog: Catalog = request.app[CATALOG]
    kind, label = RESOURCE_KINDS[request.match_info["plural"]]
    name = f"{request.match_info['namespace']}/{request.match_info['name']}"
    try:
        number = await asyncio.to_thread(catalog.find, kind, name)
    except ListingError as exc:
        raise web.HTTPBadGateway(text=str(exc)) from None
    if number is None:
        raise web.HTTPNotFound(text=f"{label} {name}: not listed here (no output URI yet?)")
    raise web.HTTPFound(f"/#/v/{number}")


def make_app(catalog: Catalog) -> web.Application:
    """The application over what the catalog can open."""
    app = web.Application()
    app[CATALOG] = catalog
    app[SEARCH] = TextSearch()
    app.router.add_get("/", index_page)
    app.router.add_static("/static/", static_dir())
    app.router.add_get("/api/views", views)
    app.router.add_get("/api/v/{v:\\d+}/overview", overview)
    app.router.add_get("/api/v/{v:\\d+}/rollouts", rollouts)
    app.router.add_get("/api/v/{v:\\d+}/tasks", tasks)
    app.router.add_get("/api/v/{v:\\d+}/task/{task:-?\\d+}", task)
    app.router.add_get("/api/v/{v:\\d+}/chart/{name}.svg", chart)
    app.router.add_get("/api/v/{v:\\d+}/dataset", dataset)
    app.router.add_get("/api/v/{v:\\d+}/drows", dataset_rows)
    app.router.add_get("/api/v/{v:\\d+}/file/{name}", dataset_file)
    app.router.add_get("/{plural:rolloutjobs|datasets}/{namespace}/{name}", resource_page)
    return app

"""In the cluster the viewer lists RolloutJobs and Datasets and opens each output on first use."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import viewerkit
from aiohttp import web

from gym_operator.storage.store import Storage
from gym_operator.testing.loopback import run_in_thread, start_app
from gym_operator.viewer.catalog import Catalog, Entry, _entry
from gym_operator.viewer.server import make_app


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def starter(catalog: Catalog) -> Callable[[], Awaitable[tuple[web.AppRunner, str]]]:
    """What run_in_thread starts: the viewer's app over `catalog` on a free loopback port."""

    async def start() -> tuple[web.AppRunner, str]:
        runner, url = await start_app(make_app(catalog))
        return runner, f"{url}/"

    return start


@contextmanager
def serving(outputs: viewerkit.Outputs, tmp_path: Path) -> Iterator[tuple[list[Entry], str]]:
    """The viewer over a catalog listing the math job and the dpo dataset; yields that list (a
    test may change it) and the viewer's URL."""
    listed = [
        Entry("job", f"file://{outputs.rollouts}/", "ns/math", "Succeeded", "40/40 rollouts"),
        Entry("dataset", f"file://{outputs.dataset}/", "ns/dpo", "Succeeded", "5 rows"),
    ]
    catalog = Catalog(Storage(), tmp_path, refresh=0.5)
    catalog.lister = lambda: list(listed)
    try:
        with run_in_thread(starter(catalog), name="viewer") as url:
            yield listed, url
    finally:
        catalog.stop()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def location(url: str) -> tuple[int, str]:
    """(status, Location or body) of a GET that is not followed."""
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(url, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location") or exc.read().decode()


def test_resources_become_entries() -> None:
    job = {
        "kind": "RolloutJob",
        "metadata": {"namespace": "team-a", "name": "math"},
        "spec": {"output": {"uri": "s3://b/spec-uri"}},
        "status": {
            "phase": "Running",
            "output": {"uri": "s3://b/runs/math/"},
            "progress": {"completed": 12, "total": 40},
        },
    }
    assert _entry(job) == Entry(
        "job", "s3://b/runs/math/", "team-a/math", "Running", "12/40 rollouts"
    )
    dataset = {
        "kind": "Dataset",
        "metadata": {"name": "dpo"},
        "spec": {"output": {"uri": "s3://b/d"}},
    }
    assert _entry(dataset) == Entry("dataset", "s3://b/d/", "/dpo", "Pending", "")
    assert _entry({"kind": "Dataset", "metadata": {}, "spec": {}}) is None


def test_catalog_lists_on_each_look_and_opens_on_first_use(
    outputs: viewerkit.Outputs, tmp_path: Path
) -> None:
    with serving(outputs, tmp_path) as (listed, url):
        _, views = get(url + "api/views")
        assert [(v["id"], v["name"], v["phase"]) for v in views] == [
            (0, "ns/math", "Succeeded"),
            (1, "ns/dpo", "Succeeded"),
        ]
        status, overview = get(url + "api/v/0/overview")
        assert status == 200 and overview["status"]["uri"] == f"file://{outputs.rollouts}"
        status, dataset = get(url + "api/v/1/dataset")
        assert status == 200 and dataset["name"] == "viewer-dpo"
        listed.append(Entry("dataset", f"file://{tmp_path / 'unbuilt'}/", "ns/new", "Pending"))
        _, views = get(url + "api/views")
        assert [v["name"] for v in views] == ["ns/math", "ns/dpo", "ns/new"]
        status, body = get(url + "api/v/2/dataset")
        assert status == 404 and "not built yet" in body["error"]
        status, body = get(url + "api/v/7/overview")
        assert status == 404


def test_a_resource_path_opens_its_page_and_follows_a_rerun(
    outputs: viewerkit.Outputs, tmp_path: Path
) -> None:
    with serving(outputs, tmp_path) as (listed, url):
        assert location(url + "rolloutjobs/ns/math") == (302, "/#/v/0")
        assert location(url + "datasets/ns/dpo") == (302, "/#/v/1")
        status, body = location(url + "rolloutjobs/ns/dpo")
        assert status == 404 and "RolloutJob ns/dpo" in body
        assert location(url + "rolloutjobs/other/math")[0] == 404
        listed[0] = Entry("job", f"file://{tmp_path / 'rerun'}/", "ns/math", "Running")
        assert location(url + "rolloutjobs/ns/math") == (302, "/#/v/2")

"""The index cache, the JSON API's answers and errors, and the viewer over s3://."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import viewerkit

from gym_operator.storage.manifest import read_all_manifests, write_manifest
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.viewer.job import JobView


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _indexed(view: JobView) -> JobView:
    view.start(interval=0.1)
    deadline = time.monotonic() + 120
    while view.indexing:
        assert time.monotonic() < deadline, "indexing did not finish in 120 s"
        time.sleep(0.1)
    return view


def test_index_is_cached_and_dropped_when_the_prefix_is_rerun(
    outputs: viewerkit.Outputs, tmp_path: Path
) -> None:
    storage = Storage()
    prefix = parse_uri(str(outputs.workdir / "copy"))
    for obj in storage.list(parse_uri(str(outputs.rollouts))):
        relative = obj.key.removeprefix(str(outputs.rollouts) + "/")
        storage.write_bytes(prefix.join(relative), storage.read_bytes(obj))
    first = _indexed(JobView(storage, prefix, tmp_path))
    assert len(first.index) == 41 and first.cache_path and first.cache_path.is_file()

    again = JobView(storage, prefix, tmp_path)
    assert again.load_cache()
    assert len(again.index) == 41 and len(again.index.parts) == len(first.index.parts)
    assert again.overview()[0] == first.overview()[0]

    manifest = read_all_manifests(storage, prefix)[0]
    write_manifest(storage, prefix, manifest.model_copy(update={"started_at": time.time()}))
    rerun = JobView(storage, prefix, tmp_path)
    assert not rerun.load_cache()
    assert len(_indexed(rerun).index) == 41


def test_api_answers_and_names_bad_parameters(served: str) -> None:
    status, body = get(served + "api/v/0/rollouts?sort=bogus")
    assert status == 400 and "sort" in body["error"]
    status, body = get(served + "api/v/0/rollouts?reward_min=high")
    assert status == 400 and "reward_min" in body["error"]
    status, body = get(served + "api/v/0/task/999")
    assert status == 404 and "999" in body["error"]
    status, body = get(served + "api/v/1/file/..%2F_job.json")
    assert status == 404
    status, body = get(served + f"api/v/0/rollouts?task={viewerkit.FAILING_TASK}")
    assert status == 200 and body["total"] == 4
    assert {r["failureClass"] for r in body["rows"]} == {"http_4xx"}
    status, body = get(served + "api/v/0/tasks?sort=pass_rate&limit=3")
    assert status == 200 and body["total"] == 10
    assert [t["passRate"] for t in body["tasks"]][:1] == [0.0]


def test_view_refuses_a_prefix_that_is_no_output(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gym_operator.cli", "view", str(tmp_path), "--no-browser"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert str(tmp_path) in done.stdout and "_DATASET.json" in done.stdout


@pytest.mark.usefixtures("s3_env")
def test_viewer_over_s3(outputs: viewerkit.Outputs, s3_bucket: str, tmp_path: Path) -> None:
    storage = Storage()
    for local, name in ((outputs.rollouts, "rollouts"), (outputs.dataset, "dataset")):
        for obj in storage.list(parse_uri(str(local))):
            key = f"runs/{name}/" + obj.key.removeprefix(str(local) + "/")
            storage.write_bytes(f"s3://{s3_bucket}/{key}", storage.read_bytes(obj))
    rollouts, dataset = f"s3://{s3_bucket}/runs/rollouts/", f"s3://{s3_bucket}/runs/dataset/"
    with viewerkit.viewer(rollouts, dataset, cache_dir=tmp_path) as url:
        deadline = time.monotonic() + 120
        while True:
            _, overview = get(url + "api/v/0/overview")
            if overview["status"]["success"] and not overview["status"]["indexing"]:
                break
            assert time.monotonic() < deadline, overview["status"]
            time.sleep(0.2)
        assert overview["counts"]["rollouts"] == 32 and overview["counts"]["failures"] == 8
        _, task = get(url + f"api/v/0/task/{viewerkit.TOOL_TASKS[1]}")
        assert [r["reward"] for r in task["repeats"]] == [1.0] * 4
        _, rows = get(url + "api/v/1/drows?split=validation&offset=1&limit=5")
        expected = (outputs.dataset / "validation-00000.jsonl").read_text().splitlines()[1:6]
        assert [r["row"] for r in rows["rows"]] == [json.loads(line) for line in expected]


def test_the_command_the_demo_prints_opens_its_rollouts_and_dataset(
    outputs: viewerkit.Outputs, tmp_path: Path
) -> None:
    from gym_operator.cli_demo import view_command

    argv = shlex.split(view_command(outputs.workdir))
    assert argv[:2] == ["gymops", "view"]
    with viewerkit.viewer(*argv[2:], cache_dir=tmp_path) as url:
        _, views = get(url + "api/views")
    assert [(v["kind"], v["uri"]) for v in views] == [
        ("job", f"file://{outputs.rollouts}"),
        ("dataset", f"file://{outputs.dataset}"),
    ]


def test_a_rerun_prefix_is_indexed_afresh(outputs: viewerkit.Outputs, tmp_path: Path) -> None:
    storage = Storage()
    prefix = parse_uri(str(tmp_path / "rerun"))
    for obj in storage.list(parse_uri(str(outputs.rollouts))):
        relative = obj.key.removeprefix(str(outputs.rollouts) + "/")
        storage.write_bytes(prefix.join(relative), storage.read_bytes(obj))
    view = _indexed(JobView(storage, prefix, None))
    assert len(view.index) == 41
    manifests = read_all_manifests(storage, prefix)
    kept = sum(p.rollouts + p.failures + p.errors for p in manifests[1].parts)
    fresh = manifests[0].model_copy(
        update={"started_at": time.time(), "parts": [], "done": [], "completed": 0, "failed": 0}
    )
    write_manifest(storage, prefix, fresh)
    view.refresh()
    assert len(view.index) == kept < 41
    numbers, _ = view.overview()
    assert numbers["counts"]["rows"] == kept

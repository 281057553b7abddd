"""The emulator behaves like an API server where kopf and kubectl rely on it (DESIGN 9)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from clusterkit import GROUP, VERSION, Cluster, rolloutjob
from kubernetes import client, watch


def create(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.create(rolloutjob(name))


def test_writes_stamp_uid_generation_and_increasing_resource_versions(cluster: Cluster) -> None:
    first = create(cluster, "a")
    second = create(cluster, "b")
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert first["metadata"]["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    patched = cluster.patch_spec("RolloutJob", "a", {"parallelism": 5})
    assert patched["metadata"]["generation"] == 2
    assert int(patched["metadata"]["resourceVersion"]) > int(second["metadata"]["resourceVersion"])
    assert patched["metadata"]["uid"] == first["metadata"]["uid"]


def test_no_op_patch_changes_nothing(cluster: Cluster) -> None:
    created = create(cluster, "a")
    same = cluster.patch_spec("RolloutJob", "a", {"parallelism": 2})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_status_subresource_is_separate(cluster: Cluster) -> None:
    create(cluster, "a")
    main = cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rolloutjobs", "a", {"status": {"phase": "X"}}
    )
    assert "status" not in main
    status = cluster.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, cluster.namespace, "rolloutjobs", "a",
        {"status": {"phase": "Running"}, "spec": {"parallelism": 9}},
    )  # fmt: skip
    assert status["status"] == {"phase": "Running"}
    assert status["spec"]["parallelism"] == 2
    assert status["metadata"]["generation"] == 1


def test_json_patch_with_a_failed_test_is_refused_with_422(cluster: Cluster) -> None:
    created = create(cluster, "a")
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    with pytest.raises(client.ApiException) as info:
        cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, cluster.namespace, "rolloutjobs", "a", ops
        )
    assert info.value.status == 422
    ops[0]["value"] = created["metadata"]["resourceVersion"]
    done = cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rolloutjobs", "a", ops
    )
    assert done["metadata"]["finalizers"] == ["x"]


def test_finalizers_hold_deletion_until_removed(cluster: Cluster) -> None:
    create(cluster, "a")
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rolloutjobs", "a", {"metadata": {"finalizers": ["x"]}}
    )
    cluster.delete("RolloutJob", "a")
    assert cluster.get("RolloutJob", "a")["metadata"]["deletionTimestamp"]
    cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rolloutjobs", "a", {"metadata": {"finalizers": None}}
    )
    assert not cluster.exists("RolloutJob", "a")


def test_lists_have_kinds_and_resource_versions(cluster: Cluster) -> None:
    create(cluster, "a")
    listed = cluster.custom.list_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rolloutjobs"
    )
    assert listed["kind"] == "RolloutJobList"
    assert int(listed["metadata"]["resourceVersion"]) >= 1
    namespaces = {n.metadata.name for n in cluster.core.list_namespace().items}
    assert {"default", cluster.namespace} <= namespaces
    assert cluster.core.read_namespace(cluster.namespace).metadata.name == cluster.namespace


def test_equality_label_selectors(cluster: Cluster) -> None:
    for name, team in (("x", "a"), ("y", "b")):
        body = {"metadata": {"name": name, "labels": {"team": team}}, "data": {}}
        cluster.core.create_namespaced_config_map(cluster.namespace, body)
    pick = cluster.core.list_namespaced_config_map
    assert [c.metadata.name for c in pick(cluster.namespace, label_selector="team=a").items] == [
        "x"
    ]
    assert [c.metadata.name for c in pick(cluster.namespace, label_selector="team!=a").items] == [
        "y"
    ]
    assert pick(cluster.namespace, label_selector="team=a,team=b").items == []


def test_watch_resumes_from_a_resource_version_without_gaps(cluster: Cluster) -> None:
    listed = cluster.custom.list_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "rolloutjobs"
    )
    create(cluster, "a")  # happens between LIST and WATCH: must not be lost
    cluster.patch_spec("RolloutJob", "a", {"parallelism": 3})
    seen: list[tuple[str, str]] = []
    stream = watch.Watch().stream(
        cluster.custom.list_namespaced_custom_object,
        GROUP, VERSION, cluster.namespace, "rolloutjobs",
        resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=2,
    )  # fmt: skip
    later = threading.Timer(0.3, lambda: cluster.delete("RolloutJob", "a"))
    later.start()
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
    later.join()
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_deleting_an_owner_collects_its_dependents(cluster: Cluster) -> None:
    owner = create(cluster, "a")
    ref = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RolloutJob",
        "name": "a",
        "uid": owner["metadata"]["uid"],
    }
    body = {"metadata": {"name": "child", "ownerReferences": [ref]}, "data": {}}
    cluster.core.create_namespaced_config_map(cluster.namespace, body)
    cluster.delete("RolloutJob", "a")
    assert cluster.core.list_namespaced_config_map(cluster.namespace).items == []


def test_generate_name(cluster: Cluster) -> None:
    made = cluster.core.create_namespaced_config_map(
        cluster.namespace, {"metadata": {"generateName": "ev-"}, "data": {}}
    )
    assert made.metadata.name.startswith("ev-") and len(made.metadata.name) > 3

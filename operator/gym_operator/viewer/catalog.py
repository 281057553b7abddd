"""What the viewer can open: the prefixes named on the command line, or, in a cluster, the
RolloutJobs and Datasets of a namespace (listed on each look, opened on first use).

In the cluster the viewer reads the resources with its own ServiceAccount (get, list) and the
outputs with its own S3 credentials; it writes nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.viewer.dataset import RESULT_FILE, DatasetView
from gym_operator.viewer.job import JobView

View = JobView | DatasetView
PLURALS = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}


@dataclass(frozen=True)
class Entry:
    """One openable output: what it is, where it is, and the resource it belongs to."""

    kind: str
    uri: str
    name: str = ""
    phase: str = ""
    detail: str = ""

    def wire(self, number: int) -> dict[str, Any]:
        """The entry as /api/views lists it."""
        return {
            "id": number,
            "kind": self.kind,
            "uri": self.uri,
            "name": self.name,
            "phase": self.phase,
            "detail": self.detail,
        }


class ListingError(Exception):
    """The cluster did not list the resources (refused, unreachable); the message says why."""


class Lister(Protocol):
    """Lists the entries of a source (the cluster)."""

    def __call__(self) -> list[Entry]: ...


class Catalog:
    """Numbered entries, each opened into a view once; numbers never change."""

    def __init__(self, storage: Storage, cache_dir: Path | None, refresh: float) -> None:
        self.storage = storage
        self.cache_dir = cache_dir
        self.refresh = refresh
        self.lister: Lister | None = None
        self._entries: list[Entry] = []
        self._numbers: dict[tuple[str, str], int] = {}
        self._views: dict[int, View] = {}
        self._lock = threading.Lock()

    def add(self, view: View) -> None:
        """A view opened up front (a prefix named on the command line)."""
        with self._lock:
            number = self._note(Entry(view.kind, str(view.prefix)))
            self._views[number] = view

    def _note(self, entry: Entry) -> int:
        key = (entry.kind, entry.uri)
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self._entries)
            self._entries.append(entry)
        else:
            self._entries[number] = entry
        return number

    def entries(self) -> list[dict[str, Any]]:
        """Every entry, after listing the cluster again when there is one."""
        if self.lister is not None:
            found = self.lister()
            with self._lock:
                for entry in found:
                    self._note(entry)
        with self._lock:
            return [entry.wire(i) for i, entry in enumerate(self._entries)]

    def find(self, kind: str, name: str) -> int | None:
        """The number of the resource `name` ("namespace/name") of `kind`, listed afresh; None
        when the viewer does not list it (yet: a resource without an output URI)."""
        self.entries()
        with self._lock:
            for number in reversed(range(len(self._entries))):  # a rerun's newest output first
                entry = self._entries[number]
                if entry.kind == kind and entry.name == name:
                    return number
        return None

    def view(self, number: int) -> View:
        """The view of entry `number`, opened (and for a job, indexed) on first use."""
        with self._lock:
            if not 0 <= number < len(self._entries):
                raise ObjectNotFound(f"view {number}")
            found = self._views.get(number)
            if found is not None:
                return found
            entry = self._entries[number]
            prefix = parse_uri(entry.uri)
            if entry.kind == "dataset":
                if not self.storage.exists(prefix.join(RESULT_FILE)):
                    raise ObjectNotFound(f"{entry.uri}{RESULT_FILE} (not built yet)")
                view: View = DatasetView(self.storage, prefix)
            else:
                job = JobView(self.storage, prefix, self.cache_dir)
                job.start(interval=self.refresh)
                view = job
            self._views[number] = view
            return view

    def stop(self) -> None:
        """Stop every indexer."""
        for view in self._views.values():
            if isinstance(view, JobView):
                view.stop()


def _entry(obj: dict[str, Any]) -> Entry | None:
    kind, meta = obj.get("kind"), obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    uri = (status.get("output") or {}).get("uri") or (spec.get("output") or {}).get("uri")
    if not uri:
        return None
    uri = uri if uri.endswith("/") else uri + "/"
    progress = status.get("progress") or {}
    detail = ""
    if kind == "RolloutJob" and progress:
        detail = f"{progress.get('completed', 0)}/{progress.get('total', '?')} rollouts"
    elif kind == "Dataset" and status.get("counts"):
        detail = f"{status['counts'].get('kept', 0)} rows"
    return Entry(
        kind="job" if kind == "RolloutJob" else "dataset",
        uri=uri,
        name=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
        phase=str(status.get("phase") or "Pending"),
        detail=detail,
    )


class KubernetesLister:
    """The RolloutJobs and Datasets of one namespace, through the Kubernetes API."""

    def __init__(self, namespace: str) -> None:
        from kubernetes import client, config

        from gym_operator.api import API_GROUP, API_VERSION  # the models load only in this mode

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        self.api = client.CustomObjectsApi()
        self.namespace = namespace
        self.group_version = (API_GROUP, API_VERSION)

    def __call__(self) -> list[Entry]:
        found: list[Entry] = []
        for kind, plural in PLURALS.items():
            answer = self._list(plural)
            for obj in answer.get("items", []):
                entry = _entry({**obj, "kind": kind})
                if entry is not None:
                    found.append(entry)
        return found

    def _list(self, plural: str) -> dict[str, Any]:
        from kubernetes.client import ApiException
        from urllib3.exceptions import HTTPError

        where = f"{plural} in namespace {self.namespace}"
        try:
            return dict(
                self.api.list_namespaced_custom_object(*self.group_version, self.namespace, plural)
            )
        except ApiException as exc:
            raise ListingError(f"cannot list {where}: {_api_message(exc)}") from None
        except HTTPError as exc:
            raise ListingError(
                f"cannot list {where}: the API server is unreachable ({exc})"
            ) from None


def _api_message(exc: Any) -> str:
    """The API server's own message of a refusal (its Status body), else its HTTP reason."""
    try:
        message = json.loads(exc.body)["message"]
    except (TypeError, ValueError, KeyError):
        message = exc.reason
    return f"{exc.status} {message}"

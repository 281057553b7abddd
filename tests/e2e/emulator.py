"""A Kubernetes API emulator for end-to-end tests: KMock's KubernetesEmulator, made kopf-ready.

KMock 0.8 as shipped merges patches naively and serves only what was stored. This subclass keeps
KMock's HTTP server, discovery and request log, and replaces the object semantics with what a real
API server does and kopf/kubectl rely on:

* every write stamps `uid`, `generation`, `creationTimestamp` and a monotonically increasing
  `resourceVersion`; a JSON patch whose `test` fails answers 422 (kopf's finalizer patches);
* merge, strategic-merge (treated as merge) and JSON patches; a no-op patch changes nothing;
* `generation` moves only on changes outside metadata/status; the `status` subresource is separate
  (the main resource ignores status changes, `/status` ignores everything else);
* watches subscribe before replaying and resume from `resourceVersion` (an event log), so no
  event between LIST and WATCH is lost; `timeoutSeconds` ends a watch;
* cluster-scoped resources (`/api/v1/namespaces`), `kind: XList` on lists, equality label and
  field selectors, `generateName`, finalizers with `deletionTimestamp`, and a garbage collector
  that deletes dependents by their ownerReferences (background propagation).

There are no controllers and no kubelet: tests set pod and Job status themselves.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp.web
import attrs
import jsonpatch
import yaml
from kmock import KubernetesEmulator, KubernetesError, ResourceInfo, Server, resource

Body = dict[str, Any]
EVENT_LOG_LIMIT = 20_000
DEFAULT_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


@dataclass(frozen=True)
class Path8s:
    """A parsed Kubernetes REST path."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_k8s_path(path: str) -> Path8s | None:
    """Split `/api/v1/...` or `/apis/g/v/...` into its parts; None for non-resource paths."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return Path8s(group, version, plural, namespace, name, sub)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def parse_selector(text: str | None) -> list[tuple[str, str, str | None]]:
    """`a=b,c!=d,e,!f` -> [(key, op, value)] with op in =, !=, exists, !exists."""
    out: list[tuple[str, str, str | None]] = []
    for term in (text or "").split(","):
        term = term.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            out.append((key.strip(), "!=", value.strip()))
        elif "==" in term or "=" in term:
            key, value = term.split("==", 1) if "==" in term else term.split("=", 1)
            out.append((key.strip(), "=", value.strip()))
        elif term.startswith("!"):
            out.append((term[1:].strip(), "!exists", None))
        else:
            out.append((term, "exists", None))
    return out


def _dig(obj: Mapping[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def selector_matches(
    values: Mapping[str, Any], terms: Iterable[tuple[str, str, str | None]]
) -> bool:
    """Whether a label (or field) mapping satisfies every selector term."""
    for key, op, value in terms:
        present = key in values and values[key] is not None
        actual = None if values.get(key) is None else str(values[key])
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
    return True


@dataclass
class Watcher:
    """One open watch: what it wants, and where its events go."""

    key: resource
    namespace: str | None
    labels: list[tuple[str, str, str | None]]
    fields: list[tuple[str, str, str | None]]
    queue: asyncio.Queue[tuple[str, Body]]

    def wants(self, key: resource, obj: Body) -> bool:
        meta = obj.get("metadata") or {}
        if key != self.key:
            return False
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if not selector_matches(meta.get("labels") or {}, self.labels):
            return False
        fields = {k: _dig(obj, k) for k, _, _ in self.fields}
        return selector_matches(fields, self.fields)


def _error(status: int, reason: str, message: str) -> KubernetesError:
    return KubernetesError(status=status, reason=reason, message=message, details={"causes": []})


@attrs.define(kw_only=True)
class GymEmulator(KubernetesEmulator):
    """The emulator the e2e tests run kopf, the official client and kubectl against."""

    _rv: int = attrs.field(default=0, init=False)
    _trimmed_upto: int = attrs.field(default=0, init=False)
    _events: list[tuple[int, resource, str, Body]] = attrs.field(factory=list, init=False)
    _watchers: list[Watcher] = attrs.field(factory=list, init=False)
    _state_lock: asyncio.Lock | None = attrs.field(default=None, init=False)

    def declare(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespaced: bool = True,
        subresources: Iterable[str] = (),
        shortnames: Iterable[str] = (),
        categories: Iterable[str] = (),
    ) -> None:
        """Make a resource discoverable and servable."""
        key = f"{group}/{version}/{plural}" if group else f"{version}/{plural}"
        self.resources[key] = ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=namespaced,
            verbs=DEFAULT_VERBS,
            shortnames=set(shortnames),
            categories=set(categories),
            subresources=set(subresources),
        )

    def declare_builtins(self) -> None:
        """The built-in resources the operator and tests use."""
        self.declare("", "v1", "namespaces", "Namespace", namespaced=False, subresources=["status"])
        self.declare("", "v1", "pods", "Pod", subresources=["status"], shortnames=["po"])
        self.declare("", "v1", "services", "Service", subresources=["status"], shortnames=["svc"])
        self.declare("", "v1", "configmaps", "ConfigMap", shortnames=["cm"])
        self.declare("", "v1", "secrets", "Secret")
        self.declare("", "v1", "events", "Event", shortnames=["ev"])
        self.declare("apps", "v1", "deployments", "Deployment", subresources=["status"])
        self.declare("batch", "v1", "jobs", "Job", subresources=["status"])
        self.declare(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            namespaced=False,
            subresources=["status"],
            shortnames=["crd"],
        )

    def declare_crds(self, directory: Path) -> None:
        """Serve every CRD in a directory (and store the CRD objects, as an API server would)."""
        for path in sorted(directory.glob("*.yaml")):
            crd = yaml.safe_load(path.read_text())
            spec = crd["spec"]
            names = spec["names"]
            for version in spec["versions"]:
                self.declare(
                    spec["group"],
                    version["name"],
                    names["plural"],
                    names["kind"],
                    namespaced=spec.get("scope") == "Namespaced",
                    subresources=list((version.get("subresources") or {}).keys()),
                    shortnames=names.get("shortNames", []),
                    categories=names.get("categories", []),
                )
            self._store(resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), crd)
        self._store(resource("", "v1", "namespaces"), {"metadata": {"name": "default"}})

    async def _serve_version(self, request: Any) -> Any:
        """KMock's APIResourceList, with subresources as the API server lists them: no short
        names or categories (else kubectl resolves `rj` to `rolloutjobs/status`)."""
        payload = await super()._serve_version(request)
        # KMock says groupVersion "/v1" for the core group; kubectl keys discovery by it.
        payload["groupVersion"] = payload["groupVersion"].lstrip("/")
        for entry in payload.get("resources", []):
            if "/" in entry["name"]:
                entry.update(shortNames=[], categories=[], verbs=["get", "patch", "update"])
        return payload

    # ------------------------------------------------------------------ state

    def _lock_(self) -> asyncio.Lock:
        if self._state_lock is None:
            self._state_lock = asyncio.Lock()
        return self._state_lock

    def _info(self, key: resource) -> ResourceInfo | None:
        for declared in self.resources:
            if declared == key:
                info: ResourceInfo = self.resources[declared]  # type: ignore[assignment]
                return info
        return None

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _store(self, key: resource, body: Body) -> Body:
        """Create without events (seeding); returns the stamped body."""
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta["resourceVersion"] = self._next_rv()
        meta.setdefault("generation", 1)
        self._objects[key, meta.get("namespace"), meta["name"]] = body
        return body

    def _get(self, key: resource, namespace: str | None, name: str) -> Body | None:
        index = (key, namespace, name)
        if index not in self._objects or self._objects[index].deleted:
            return None
        return copy.deepcopy(self._objects[index].raw)

    def _all(self, key: resource, namespace: str | None) -> list[Body]:
        out = []
        for (res, ns, _), obj in self._objects.items():
            if res == key and not obj.deleted and (namespace is None or ns == namespace):
                out.append(copy.deepcopy(obj.raw))
        return out

    def _emit(self, key: resource, type_: str, obj: Body) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        snapshot = copy.deepcopy(obj)
        self._events.append((rv, key, type_, snapshot))
        if len(self._events) > EVENT_LOG_LIMIT:
            self._trimmed_upto = self._events[-EVENT_LOG_LIMIT - 1][0]
            del self._events[:-EVENT_LOG_LIMIT]
        for watcher in self._watchers:
            if watcher.wants(key, snapshot):
                watcher.queue.put_nowait((type_, snapshot))

    def _write(self, key: resource, old: Body, new: Body) -> Body:
        """Store a new version if it differs; bump resourceVersion/generation; emit MODIFIED."""
        meta = new["metadata"]
        for fixed in ("uid", "creationTimestamp", "name", "namespace", "resourceVersion"):
            if fixed in old["metadata"]:
                meta[fixed] = old["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        meta["generation"] = old["metadata"].get("generation", 1)
        if new == old:
            return old
        if _spec_part(new) != _spec_part(old):
            meta["generation"] += 1
        if old["metadata"].get("deletionTimestamp"):
            meta["deletionTimestamp"] = old["metadata"]["deletionTimestamp"]
        meta["resourceVersion"] = self._next_rv()
        index = (key, meta.get("namespace"), meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._objects[index].create(new)
            self._remove(key, new)
            return new
        self._objects[index].create(new)
        self._emit(key, "MODIFIED", new)
        return new

    def _remove(self, key: resource, obj: Body) -> None:
        meta = obj["metadata"]
        meta["resourceVersion"] = self._next_rv()
        self._objects[key, meta.get("namespace"), meta["name"]].delete()
        self._emit(key, "DELETED", obj)
        self._collect_garbage(meta["uid"])

    def _collect_garbage(self, owner_uid: str) -> None:
        """Delete dependents of a deleted owner (background propagation)."""
        for (res, _, _), stored in list(self._objects.items()):
            if stored.deleted:
                continue
            body = copy.deepcopy(stored.raw)
            refs = (body.get("metadata") or {}).get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in refs):
                self._delete_object(res, body)

    def _delete_object(self, key: resource, obj: Body) -> Body:
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = _now()
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._objects[key, meta.get("namespace"), meta["name"]].create(new)
                self._emit(key, "MODIFIED", new)
                return new
            return obj
        self._remove(key, obj)
        return obj

    # ------------------------------------------------------------------ HTTP

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Resource paths are served here (KMock's own parser mis-reads cluster-scoped ones);
        discovery and everything else goes to KMock."""
        parsed = parse_k8s_path(raw.path)
        if parsed is None or raw.method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            return await super().__call__(raw)
        body = await raw.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return await self._render_error(_error(400, "BadRequest", "the body is not JSON"))
        try:
            return await self._serve_resource(raw, parsed, data)
        except KubernetesError as exc:
            return await self._render_error(exc)

    async def _serve_resource(
        self, raw: aiohttp.web.BaseRequest, parsed: Path8s, data: Any
    ) -> aiohttp.web.StreamResponse:
        key = resource(parsed.group, parsed.version, parsed.plural)
        info = self._info(key)
        if info is None:
            raise _error(404, "NotFound", f"the server could not find the resource {parsed.plural}")
        query = {k: v[-1] for k, v in parse_qs(urlparse(str(raw.url)).query).items()}
        if raw.method == "GET" and query.get("watch") in ("true", "1"):
            return await self._watch(raw, key, parsed, query)
        async with self._lock_():
            result, status = self._dispatch(raw.method, key, info, parsed, query, data)
            if raw.method == "GET" and "as=Table" in raw.headers.get("Accept", ""):
                result = self._table(key, result)
        return aiohttp.web.json_response(result, status=status)

    def _printer_columns(self, key: resource) -> list[dict[str, Any]]:
        """A CRD's additionalPrinterColumns (built-ins: just Age)."""
        crds = resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        crd = self._get(crds, None, f"{key.plural}.{key.group}") if key.group else None
        for version in (crd or {}).get("spec", {}).get("versions", []):
            if version["name"] == key.version and version.get("additionalPrinterColumns"):
                return list(version["additionalPrinterColumns"])
        return [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]

    def _table(self, key: resource, result: Body) -> Body:
        """Server-side printing (what `kubectl get` shows): a meta.k8s.io/v1 Table."""
        columns = self._printer_columns(key)
        objects = result["items"] if "items" in result else [result]
        rows = []
        for obj in objects:
            cells = [obj["metadata"]["name"]]
            cells += [_cell(_dig(obj, col["jsonPath"].lstrip(".")), col["type"]) for col in columns]
            metadata = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1"}
            rows.append({"cells": cells, "object": {**metadata, "metadata": obj["metadata"]}})
        definitions = [{"name": "Name", "type": "string", "format": "name", "priority": 0}]
        definitions += [
            {"name": c["name"], "type": c["type"], "format": "", "priority": c.get("priority", 0)}
            for c in columns
        ]
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(self._rv)},
            "columnDefinitions": definitions,
            "rows": rows,
        }

    def _dispatch(
        self,
        method: str,
        key: resource,
        info: ResourceInfo,
        where: Path8s,
        query: dict[str, str],
        data: Any,
    ) -> tuple[Body, int]:
        if method == "GET" and where.name is None:
            return self._list(key, info, where, query), 200
        if method == "GET":
            return self._fetch(key, info, where), 200
        if method == "POST":
            return self._create(key, info, where, data), 201
        if method == "DELETE":
            return self._delete(key, where), 200
        if method == "PUT":
            return self._replace(key, info, where, data), 200
        return self._patch(key, info, where, data), 200

    def _list(
        self, key: resource, info: ResourceInfo, where: Path8s, query: dict[str, str]
    ) -> Body:
        labels = parse_selector(query.get("labelSelector"))
        fields = parse_selector(query.get("fieldSelector"))
        items = []
        for obj in self._all(key, where.namespace):
            meta = obj.get("metadata") or {}
            if not selector_matches(meta.get("labels") or {}, labels):
                continue
            if not selector_matches({k: _dig(obj, k) for k, _, _ in fields}, fields):
                continue
            items.append(obj)
        items.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        api_version = f"{key.group}/{key.version}" if key.group else str(key.version)
        return {
            "apiVersion": api_version,
            "kind": f"{info.kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _fetch(self, key: resource, info: ResourceInfo, where: Path8s) -> Body:
        assert where.name is not None
        obj = self._get(key, where.namespace, where.name)
        if obj is None:
            raise _error(404, "NotFound", f'{key.plural} "{where.name}" not found')
        return obj

    def _create(self, key: resource, info: ResourceInfo, where: Path8s, data: Any) -> Body:
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body must be a JSON object")
        body = copy.deepcopy(data)
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if not meta.get("name"):
            raise _error(422, "Invalid", "metadata.name: Required value")
        if info.namespaced:
            meta["namespace"] = where.namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if self._get(key, meta.get("namespace"), meta["name"]) is not None:
            raise _error(409, "AlreadyExists", f'{key.plural} "{meta["name"]}" already exists')
        if "status" in info.subresources:
            body.pop("status", None)
        api_version = f"{key.group}/{key.version}" if key.group else str(key.version)
        body.setdefault("apiVersion", api_version)
        body.setdefault("kind", info.kind)
        for generated in ("uid", "resourceVersion", "creationTimestamp", "generation"):
            meta.pop(generated, None)
        stored = self._store(key, body)
        self._emit(key, "ADDED", stored)
        return stored

    def _delete(self, key: resource, where: Path8s) -> Body:
        assert where.name is not None
        obj = self._get(key, where.namespace, where.name)
        if obj is None:
            raise _error(404, "NotFound", f'{key.plural} "{where.name}" not found')
        return self._delete_object(key, obj)

    def _apply(
        self, key: resource, info: ResourceInfo, where: Path8s, new: Body, old: Body
    ) -> Body:
        if where.subresource == "status":
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            result["metadata"] = copy.deepcopy(old["metadata"])
            return self._write(key, old, result)
        if where.subresource:
            raise _error(404, "NotFound", f"subresource {where.subresource} is not served")
        if "status" in info.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return self._write(key, old, new)

    def _patch(self, key: resource, info: ResourceInfo, where: Path8s, data: Any) -> Body:
        old = self._fetch(key, info, where)
        if isinstance(data, list):
            try:
                new = jsonpatch.apply_patch(copy.deepcopy(old), data)
            except jsonpatch.JsonPatchTestFailed as exc:
                raise _error(422, "Invalid", f"the JSON patch test failed: {exc}") from None
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise _error(422, "Invalid", f"the JSON patch cannot apply: {exc}") from None
        elif isinstance(data, dict):
            new = merge_patch(old, data)
        else:
            raise _error(400, "BadRequest", "unsupported patch body")
        new.setdefault("metadata", {})
        return self._apply(key, info, where, new, old)

    def _replace(self, key: resource, info: ResourceInfo, where: Path8s, data: Any) -> Body:
        old = self._fetch(key, info, where)
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body must be a JSON object")
        wanted_rv = (data.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise _error(
                409, "Conflict", "the object has been modified; apply to the latest version"
            )
        new = copy.deepcopy(data)
        new.setdefault("metadata", {})
        return self._apply(key, info, where, new, old)

    async def _watch(
        self, raw: Any, key: resource, where: Path8s, query: dict[str, str]
    ) -> aiohttp.web.StreamResponse:
        fields = parse_selector(query.get("fieldSelector"))
        if where.name:
            fields.append(("metadata.name", "=", where.name))
        watcher = Watcher(
            key=key,
            namespace=where.namespace,
            labels=parse_selector(query.get("labelSelector")),
            fields=fields,
            queue=asyncio.Queue(),
        )
        since = query.get("resourceVersion")
        async with self._lock_():  # subscribe and take the replay atomically: no gap, no dupes
            self._watchers.append(watcher)
            if since and since != "0":
                if int(since) < self._trimmed_upto:
                    self._watchers.remove(watcher)
                    raise _error(410, "Expired", f"too old resource version: {since}")
                replay = [
                    (t, o)
                    for rv, k, t, o in self._events
                    if rv > int(since) and watcher.wants(k, o)
                ]
            else:
                replay = [
                    ("ADDED", o) for o in self._all(key, where.namespace) if watcher.wants(key, o)
                ]
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        timeout = float(query.get("timeoutSeconds") or 3600)
        try:
            for type_, obj in replay:
                await _write_event(response, type_, obj)
            await asyncio.wait_for(_pump(response, watcher.queue), timeout=timeout)
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.remove(watcher)
        try:
            await response.write_eof()
        except ConnectionError:
            pass
        return response


def _cell(value: Any, type_: str) -> Any:
    """A printer-column cell: dates as ages (like `5m`), absent values as None."""
    if value is None or type_ != "date":
        return value
    born = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    seconds = int((datetime.datetime.now(tz=datetime.UTC) - born).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _spec_part(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("metadata", "status")}


async def _write_event(response: aiohttp.web.StreamResponse, type_: str, obj: Body) -> None:
    await response.write(json.dumps({"type": type_, "object": obj}).encode() + b"\n")


async def _pump(
    response: aiohttp.web.StreamResponse, queue: asyncio.Queue[tuple[str, Body]]
) -> None:
    while True:
        type_, obj = await queue.get()
        await _write_event(response, type_, obj)


class EmulatorThread:
    """Runs a GymEmulator over HTTP on 127.0.0.1 (port 0) in a background thread."""

    emulator_class: type[GymEmulator] = GymEmulator

    def __init__(self, crds: Path) -> None:
        self.crds = crds
        self.emulator: GymEmulator | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)

    def start(self) -> EmulatorThread:
        """Start serving; returns once the URL is known."""
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the Kubernetes emulator did not start")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        emulator = self.emulator_class()
        emulator.declare_builtins()
        emulator.declare_crds(self.crds)
        self.emulator = emulator
        async with emulator, Server(emulator, host="127.0.0.1") as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(emulator, *args)` on the emulator's loop, under its lock; return the result."""
        assert self._loop is not None and self.emulator is not None
        emulator = self.emulator

        async def run() -> Any:
            async with emulator._lock_():
                return fn(emulator, *args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig pointing at the emulator (any token is accepted)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "emulator-token"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "tester", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }
        path.write_text(yaml.safe_dump(config))
        return path

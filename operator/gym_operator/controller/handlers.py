"""kopf registration: thin handlers that validate, set Pending, and apply what a reconcile decided.

Per resource, the timer runs the kind's reconcile (rolloutjob.py, dataset.py), the only code that
creates or deletes children and writes status once the resource was admitted; kopf runs one
timer invocation per resource at a time, so no lock keeps writers apart. The create, resume and
update handlers only admit: Failed naming every bad field, or a first Pending.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import kopf
from kubernetes.client import ApiException

from gym_operator import metrics
from gym_operator.api import API_GROUP, API_VERSION, DatasetStatus, RolloutJobStatus
from gym_operator.controller import dataset, kube, reconcile, rolloutjob
from gym_operator.controller.config import OperatorConfig
from gym_operator.controller.runtime import Runtime

TIMER_EXIT_WAIT_SECONDS = 1.0
TIMER_EXIT_POLL_SECONDS = 5.0
FIRST_RECONCILE_SECONDS = 1.0
"""The timer's first run after a resource appears (or the operator starts): soon after the
create handler admitted it, so its children need not wait a whole interval."""


def runtime(memo: Any) -> Runtime:
    """The Runtime stored in kopf's memo at startup."""
    rt: Runtime = memo.runtime
    return rt


@contextlib.contextmanager
def timed(kind: str, handler: str) -> Iterator[None]:
    """Reconcile latency and error metrics around one handler run."""
    started = time.monotonic()
    try:
        yield
    except kopf.PermanentError:
        metrics.OPERATOR_RECONCILE_ERRORS.labels(kind=kind, handler=handler).inc()
        raise
    except ApiException as exc:
        metrics.OPERATOR_RECONCILE_ERRORS.labels(kind=kind, handler=handler).inc()
        raise kopf.TemporaryError(
            f"Kubernetes API error {exc.status}: {exc.reason}", delay=5
        ) from exc
    except Exception:
        metrics.OPERATOR_RECONCILE_ERRORS.labels(kind=kind, handler=handler).inc()
        raise
    finally:
        metrics.OPERATOR_RECONCILE_LATENCY.labels(kind=kind, handler=handler).observe(
            time.monotonic() - started
        )


def apply(outcome: reconcile.Outcome, body: kopf.Body, patch: kopf.Patch) -> None:
    """Hand an Outcome to kopf: one status patch, the annotations, the Events."""
    if outcome.status:
        patch.status.update(outcome.status)
    if outcome.annotations:
        patch.metadata.setdefault("annotations", {}).update(outcome.annotations)
    for event in outcome.events:
        post = kopf.warn if event.warning else kopf.info
        post(body, reason=event.reason, message=event.message)


def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep kopf's state in gymops.dev annotations, run standalone, make the clients once."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.peering.standalone = True
    settings.posting.level = logging.INFO
    settings.posting.loggers = False  # Events only from our explicit kopf.info/warn, not per log
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    # A timer that has just deleted its own resource (TTL) is still finishing when the deletion
    # event arrives; wait for it briefly, and re-check a slow one every few seconds, not kopf's
    # default minute, so the finalizer is released promptly.
    settings.background.instant_exit_timeout = TIMER_EXIT_WAIT_SECONDS
    settings.background.cancellation_polling = TIMER_EXIT_POLL_SECONDS
    memo.runtime = Runtime(cfg=memo.cfg, kube=kube.KubeClient.from_environment())


def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close the clients."""
    rt: Runtime | None = getattr(memo, "runtime", None)
    if rt is not None:
        rt.close()


Handler = Callable[..., None]


def admission(kind: str, event: str, status_model: Any, first: Any) -> Handler:
    """A create/resume/update handler: admit the resource; an invalid spec is not retried."""

    def handler(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        with timed(kind, event):
            outcome = reconcile.admit(runtime(memo), status_model, body, first)
            apply(outcome, body, patch)
            if outcome.refusal:
                raise kopf.PermanentError(outcome.refusal)

    handler.__name__ = handler.__qualname__ = f"{kind.lower()}_{event}"
    return handler


def timer(kind: str, run: Callable[[Runtime, kopf.Body], reconcile.Outcome]) -> Handler:
    """The timer: the kind's reconcile, its Outcome applied."""

    def handler(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        with timed(kind, "timer"):
            apply(run(runtime(memo), body), body, patch)

    handler.__name__ = handler.__qualname__ = f"{kind.lower()}_timer"
    return handler


def forgetting(kind: str) -> Handler:
    """The delete handler: forget the resource (its children go by their ownerReferences)."""

    def handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        runtime(memo).forget(kind, str(body["metadata"]["uid"]))

    handler.__name__ = handler.__qualname__ = f"{kind.lower()}_delete"
    return handler


KINDS = (
    ("RolloutJob", "rolloutjobs", RolloutJobStatus, rolloutjob.first_status, rolloutjob.reconcile),
    ("Dataset", "datasets", DatasetStatus, None, dataset.reconcile),
)


def register(registry: kopf.OperatorRegistry, cfg: OperatorConfig) -> None:
    """Register every handler in `registry`; the timer interval comes from `cfg`."""
    kopf.on.login(registry=registry)(kopf.login_via_client)  # a fresh registry has no login
    kopf.on.startup(registry=registry)(operator_startup)
    kopf.on.cleanup(registry=registry)(operator_cleanup)
    every = cfg.timers.reconcile_seconds
    for kind, plural, status_model, first, run in KINDS:
        resource = (API_GROUP, API_VERSION, plural)
        prefix = kind.lower()
        on = kopf.on
        on.create(*resource, registry=registry, id=f"{prefix}_create")(
            admission(kind, "create", status_model, first)
        )
        on.resume(*resource, registry=registry, id=f"{prefix}_resume")(
            admission(kind, "resume", status_model, first)
        )
        on.update(*resource, registry=registry, id=f"{prefix}_update", field="spec")(
            admission(kind, "update", status_model, first)
        )
        on.delete(*resource, registry=registry, id=f"{prefix}_delete", optional=True)(
            forgetting(kind)
        )
        kopf.timer(
            *resource,
            registry=registry,
            id=f"{prefix}_timer",
            interval=every,
            initial_delay=min(FIRST_RECONCILE_SECONDS, every),
        )(timer(kind, run))

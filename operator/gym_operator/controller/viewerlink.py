"""status.viewerPath: where the chart's rollout viewer shows a RolloutJob, when one lists it.

The contract with the chart: with viewer.enabled the operator runs with GYMOPS_VIEWER_NAMESPACE
set to the namespace the viewer lists, and the viewer serves /rolloutjobs/<namespace>/<name>
(a redirect to that job's page). The path is relative to the viewer's Service, which users reach
with `kubectl port-forward`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

VIEWER_NAMESPACE_ENV = "GYMOPS_VIEWER_NAMESPACE"


def viewer_path(namespace: str, name: str, viewer_namespace: str | None) -> str | None:
    """The viewer's path of RolloutJob namespace/name; None when no viewer lists its namespace."""
    if not viewer_namespace or namespace != viewer_namespace:
        return None
    return f"/rolloutjobs/{namespace}/{name}"


def listed_namespace(environ: Mapping[str, str]) -> str | None:
    """The namespace an installed viewer lists, from the operator's environment; None: none."""
    return environ.get(VIEWER_NAMESPACE_ENV, "").strip() or None


@functools.cache
def _installed() -> str | None:
    return listed_namespace(os.environ)


def path_for(namespace: str, name: str) -> str | None:
    """viewer_path with the viewer the operator was started with (environment read once)."""
    return viewer_path(namespace, name, _installed())

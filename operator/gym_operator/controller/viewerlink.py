"""status.viewerPath: where the chart's rollout viewer shows a RolloutJob, when one lists it.

The contract with the chart: with viewer.enabled the operator runs with GYMOPS_VIEWER_NAMESPACE
set to the namespace the viewer lists (OperatorConfig.viewer_namespace), and the viewer serves
/rolloutjobs/<namespace>/<name> (a redirect to that job's page). The path is relative to the
viewer's Service, which users reach with `kubectl port-forward`.
"""

from __future__ import annotations


def viewer_path(namespace: str, name: str, viewer_namespace: str | None) -> str | None:
    """The viewer's path of RolloutJob namespace/name; None when no viewer lists its namespace."""
    if not viewer_namespace or namespace != viewer_namespace:
        return None
    return f"/rolloutjobs/{namespace}/{name}"

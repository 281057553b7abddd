"""Resolving a Dataset's sources to RolloutJob output prefixes.

In the cluster the controller resolves `rolloutJobRef` (it knows each RolloutJob's output URI)
and hands the prefixes to the builder pod as `--source-uri`. In local mode there is no API
server: a `rolloutJobRef: NAME` is resolved from the environment variable
`GYMOPS_SOURCE_<NAME>` (upper case, `-` and `.` as `_`), e.g.
`GYMOPS_SOURCE_MATH_RUN1=file:///data/rollouts/run1/`; `uri` sources need nothing.
"""

from __future__ import annotations

import os
import re

from gym_operator import errors
from gym_operator.api.dataset import DatasetSpec


class UnresolvedSource(errors.BadSpec, ValueError):
    """A rolloutJobRef that cannot be turned into an output prefix here."""


def env_name(job_name: str) -> str:
    """The environment variable that resolves a rolloutJobRef in local mode."""
    return "GYMOPS_SOURCE_" + re.sub(r"[^A-Za-z0-9]", "_", job_name).upper()


def resolve_sources(spec: DatasetSpec, given: list[str] | None = None) -> list[str]:
    """Source prefixes: `given` (resolved by the controller) if any, else from the spec."""
    if given:
        return list(given)
    uris = []
    for i, source in enumerate(spec.sources):
        if source.uri:
            uris.append(source.uri)
            continue
        name = source.rollout_job_ref or ""
        value = os.environ.get(env_name(name))
        if not value:
            raise UnresolvedSource(
                f"spec.sources[{i}].rolloutJobRef {name!r}: set {env_name(name)} to the"
                " RolloutJob's output URI, or use `uri:` in local mode"
            )
        uris.append(value)
    return uris

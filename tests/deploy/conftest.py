"""Fixtures of the deployment tests: helm, the chart and the overlays rendered to objects."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from deploykit import BIN, CHART, NAMESPACE, RELEASE, ROOT, Manifest, documents, find_helm, run

# The install tests run the chart's operator on the real control plane with the e2e helpers and
# fixtures (`clusterkit`, `opfixtures`); appended, so nothing of this folder is shadowed.
if str(ROOT / "tests" / "e2e") not in sys.path:
    sys.path.append(str(ROOT / "tests" / "e2e"))

from opfixtures import cluster, world  # noqa: F401


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the helm binary."""
    return find_helm()


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Manifest]]:
    """`render(values_file=None, **sets)`: the chart's objects for these values; fails on error."""
    cache: dict[tuple[Any, ...], list[Manifest]] = {}

    def _render(values_file: Path | None = None, sets: Iterable[str] = ()) -> list[Manifest]:
        key = (values_file, tuple(sets))
        if key not in cache:
            args = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
            if values_file is not None:
                args += ["--values", str(values_file)]
            for item in sets:
                args += ["--set", item]
            result = run(args)
            assert result.returncode == 0, result.stderr
            cache[key] = documents(result.stdout)
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def kustomize() -> Callable[[Path], list[Manifest]]:
    """`kustomize(dir)`: the objects `kubectl kustomize` renders for an overlay."""
    cache: dict[Path, list[Manifest]] = {}

    def _kustomize(path: Path) -> list[Manifest]:
        if path not in cache:
            result = run([str(BIN / "kubectl"), "kustomize", str(path)])
            assert result.returncode == 0, result.stderr
            cache[path] = documents(result.stdout)
        return cache[path]

    return _kustomize

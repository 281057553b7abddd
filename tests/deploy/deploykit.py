"""Helpers of the deployment tests (import as `deploykit`: pytest puts this folder on sys.path)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "gym-operator"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
MANIFESTS = ROOT / "manifests"
OVERLAYS = [MANIFESTS / "base", *sorted((MANIFESTS / "overlays").iterdir())]
EXAMPLES = MANIFESTS / "examples"
BIN = ROOT / ".venv" / "bin"
RELEASE = "gymops"
NAMESPACE = "gym-system"

Manifest = dict[str, Any]


def find_helm() -> str:
    """The project-local helm (`make helm`), else one on PATH."""
    local = ROOT / ".cache" / "bin" / "helm"
    if local.exists():
        return str(local)
    found = shutil.which("helm")
    if found is None:
        pytest.fail("helm not found: run `make helm` (scripts/install-helm.sh)")
    return found


def run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool, capturing its output."""
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=120)


def documents(text: str) -> list[Manifest]:
    """The non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    """The objects of one kind."""
    return [obj for obj in objects if obj.get("kind") == kind]


def one(objects: list[Manifest], kind: str) -> Manifest:
    """The single object of a kind."""
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]

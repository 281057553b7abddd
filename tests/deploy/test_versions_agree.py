"""One version everywhere: package, chart appVersion, kustomize image, default worker image."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import yaml
from deploykit import CHART, MANIFESTS, ROOT, Manifest, one

from gym_operator.controller.config import WorkerSettings


def package_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    assert chart["appVersion"] == package_version()


def test_default_images_carry_the_package_version(
    render: Callable[..., list[Manifest]], kustomize: Callable[[Path], list[Manifest]]
) -> None:
    expected = f"ghcr.io/gymops/gym-operator:{package_version()}"
    assert WorkerSettings().image == expected
    for objects in (render(), kustomize(MANIFESTS / "base")):
        (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert container["image"] == expected
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["GYMOPS_WORKER_IMAGE"] == expected

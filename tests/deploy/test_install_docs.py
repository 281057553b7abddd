"""docs/install.md: its manifests (kustomize overlay, Argo CD, Flux) work with this repository."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import yaml
from deploykit import BIN, MANIFESTS, ROOT, Manifest, documents, one, run

DOCS = (ROOT / "docs" / "install.md").read_text(encoding="utf-8")
REPO_URL = "https://github.com/YOUR-ORG/gym-operator"


def yaml_blocks() -> list[Manifest]:
    """Every object in the doc's ```yaml blocks."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS, flags=re.DOTALL)
    return [doc for block in blocks for doc in documents(block)]


def block_of_kind(kind: str, api_prefix: str = "") -> list[Manifest]:
    return [
        d
        for d in yaml_blocks()
        if d.get("kind") == kind and str(d.get("apiVersion", "")).startswith(api_prefix)
    ]


def test_own_image_overlay_sets_operator_and_worker_image(tmp_path: Path) -> None:
    (overlay,) = block_of_kind("Kustomization", "kustomize.config.k8s.io")
    remote = overlay["resources"][0]
    assert remote.startswith(REPO_URL + "//manifests/")
    local = MANIFESTS / remote.removeprefix(REPO_URL + "//manifests/").split("?")[0]
    overlay["resources"] = [os.path.relpath(local, tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    result = run([str(BIN / "kubectl"), "kustomize", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    (container,) = one(documents(result.stdout), "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == "registry.example.com/ml/gym-operator:0.1.0"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["GYMOPS_WORKER_IMAGE"] == container["image"]


def test_argo_cd_application_points_at_the_chart_with_valid_values(
    render: Callable[..., list[Manifest]], tmp_path: Path
) -> None:
    (app,) = block_of_kind("Application")
    source = app["spec"]["source"]
    assert source["repoURL"] == REPO_URL + ".git"
    assert (ROOT / source["path"] / "Chart.yaml").exists()
    values = tmp_path / "argo-values.yaml"
    values.write_text(yaml.safe_dump(source["helm"]["valuesObject"]))
    objects = render(values)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert crds and all(
        c["metadata"]["annotations"]["argocd.argoproj.io/sync-options"].startswith("Delete=false")
        for c in crds
    )


def test_flux_objects_point_at_paths_that_exist(
    render: Callable[..., list[Manifest]], tmp_path: Path
) -> None:
    (repo,) = block_of_kind("GitRepository")
    assert repo["spec"]["url"] == REPO_URL + ".git"
    (release,) = block_of_kind("HelmRelease")
    chart = release["spec"]["chart"]["spec"]
    assert chart["sourceRef"]["name"] == repo["metadata"]["name"]
    assert (ROOT / chart["chart"] / "Chart.yaml").exists()
    values = tmp_path / "flux-values.yaml"
    values.write_text(yaml.safe_dump(release["spec"]["values"]))
    assert render(values)
    (kustomization,) = block_of_kind("Kustomization", "kustomize.toolkit.fluxcd.io")
    assert (ROOT / kustomization["spec"]["path"] / "kustomization.yaml").exists()


def test_every_repository_path_the_doc_names_exists() -> None:
    paths = set(re.findall(r"`((?:charts|manifests|scripts|tests|crds)/[\w./-]*)`", DOCS))
    assert paths
    for path in paths:
        assert (ROOT / path.rstrip("/").split("*")[0]).exists(), path

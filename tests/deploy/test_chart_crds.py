"""The chart and kustomize base carry the CRDs of crds/ unchanged, and only when asked to."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from deploykit import MANIFESTS, ROOT, Manifest, of_kind, run

SOURCE_CRDS = sorted((ROOT / "crds").glob("*.yaml"))
KEEP = "helm.sh/resource-policy"


def source_crds() -> dict[str, Manifest]:
    crds = {}
    for path in SOURCE_CRDS:
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        crds[crd["metadata"]["name"]] = crd
    return crds


def without_keep(crd: Manifest) -> Manifest:
    annotations = dict(crd["metadata"].get("annotations") or {})
    annotations.pop(KEEP, None)
    metadata = {k: v for k, v in crd["metadata"].items() if k != "annotations"}
    if annotations:
        metadata["annotations"] = annotations
    return {**crd, "metadata": metadata}


def test_generated_copies_are_up_to_date() -> None:
    result = run([sys.executable, str(ROOT / "scripts" / "sync_chart.py"), "--check"])
    assert result.returncode == 0, result.stderr


def test_both_resources_have_crds() -> None:
    assert set(source_crds()) == {"rolloutjobs.gymops.dev", "datasets.gymops.dev"}


def test_chart_renders_the_crds_of_crds_dir_with_keep(
    render: Callable[..., list[Manifest]],
) -> None:
    rendered = {c["metadata"]["name"]: c for c in of_kind(render(), "CustomResourceDefinition")}
    assert rendered.keys() == source_crds().keys()
    for name, crd in rendered.items():
        assert crd["metadata"]["annotations"][KEEP] == "keep"
        assert without_keep(crd) == source_crds()[name]


def test_crds_render_only_when_install_is_true(render: Callable[..., list[Manifest]]) -> None:
    assert not of_kind(render(sets=["crds.install=false"]), "CustomResourceDefinition")
    assert len(of_kind(render(sets=["crds.install=true"]), "CustomResourceDefinition")) == 2


def test_keep_false_lets_helm_delete_the_crds(render: Callable[..., list[Manifest]]) -> None:
    crds = of_kind(render(sets=["crds.keep=false"]), "CustomResourceDefinition")
    assert crds
    for crd in crds:
        assert KEEP not in (crd["metadata"].get("annotations") or {})
        assert crd == source_crds()[crd["metadata"]["name"]]


def test_crds_live_in_templates_so_upgrades_apply_them() -> None:
    chart = ROOT / "charts" / "gym-operator"
    assert not (chart / "crds").exists(), "helm never upgrades files under crds/"
    assert sorted(p.name for p in (chart / "templates" / "crds").glob("*.yaml")) == [
        p.name for p in SOURCE_CRDS
    ]


def test_kustomize_base_carries_the_same_crds(
    kustomize: Callable[[Path], list[Manifest]],
) -> None:
    objects = kustomize(MANIFESTS / "base")
    rendered = {c["metadata"]["name"]: c for c in of_kind(objects, "CustomResourceDefinition")}
    assert rendered == source_crds()


def test_extra_annotations_for_gitops_tools(render: Callable[..., list[Manifest]]) -> None:
    sets = ["crds.keep=false", r"crds.annotations.argocd\.argoproj\.io/sync-options=Delete=false"]
    for crd in of_kind(render(sets=sets), "CustomResourceDefinition"):
        assert crd["metadata"]["annotations"] == {"argocd.argoproj.io/sync-options": "Delete=false"}

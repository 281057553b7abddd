"""Files on file:// follow the umask; the card's histograms are labelled matplotlib charts."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import viewerkit

from gym_operator.data import plots
from gym_operator.storage.store import Storage


def test_job_and_dataset_files_are_0644_under_umask_022(outputs: viewerkit.Outputs) -> None:
    files = [p for p in outputs.workdir.rglob("*") if p.is_file() and p.suffix != ".yaml"]
    written = [p for p in files if outputs.rollouts in p.parents or outputs.dataset in p.parents]
    names = {p.name for p in written}
    assert {"_job.json", "_SUCCESS", "_manifest.json", "README.md", "_DATASET.json"} <= names
    assert any(n.startswith("part-") for n in names) and "train-00000.jsonl" in names
    modes = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {"0o644"}, modes
    assert not [p for p in written if p.name.endswith(".tmp")]


def test_write_follows_another_umask_and_stays_atomic(tmp_path: Path) -> None:
    storage = Storage()
    target = tmp_path / "deep" / "part.jsonl"
    old = os.umask(0o027)
    try:
        storage.write_bytes(str(target), b"first\n")
        storage.write_bytes(str(target), b"second\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_bytes() == b"second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["part.jsonl"]


def test_card_histograms_are_titled_labelled_and_counted(outputs: viewerkit.Outputs) -> None:
    for name in ("reward_histogram.png", "pass_rate_histogram.png"):
        data = (outputs.dataset / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (700, 340)
    svg = plots.histogram(
        [3, 0, 17], 0.0, 1.0, title="Reward per verified rollout", xlabel="reward", fmt="svg"
    ).decode()
    for text in ("Reward per verified rollout", ">reward<", ">count<", ">17<", ">3<"):
        assert text in svg, text
    assert plots.bin_counts([0.0, 0.5, 1.0, 1.0], 0.0, 1.0, 2) == [1, 3]

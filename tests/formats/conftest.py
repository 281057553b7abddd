"""Format-test fixtures: offline HF settings, the ChatML tokenizer, every exporter's output."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

# Before datasets/transformers are imported: never reach the Hub, keep caches out of $HOME.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="gymops-hf-datasets-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from formatkit import build_realistic, export_all, make_tokenizer, write_realistic

from gym_operator.data.builder import DatasetSummary


@pytest.fixture(scope="session")
def format_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("formats")


@pytest.fixture(scope="session")
def tokenizer(format_root: Path) -> Any:
    """The offline ChatML tokenizer (also saved under format_root/tok)."""
    return make_tokenizer(format_root / "tok")


@pytest.fixture(scope="session")
def exported(format_root: Path) -> dict[tuple[str, str, str], DatasetSummary]:
    """(format, kind, fileFormat) -> summary of that dataset, all built from the same rollouts."""
    return export_all(format_root)


@pytest.fixture(scope="session")
def realistic(format_root: Path):
    """realistic(format, kind, fileFormat, rowsPerFile) -> summary; each export built once."""
    source = write_realistic(format_root / "realistic")
    built: dict[tuple[str, str, str, int], DatasetSummary] = {}

    def get(fmt: str, kind: str, file_format: str, rows_per_file: int) -> DatasetSummary:
        key = (fmt, kind, file_format, rows_per_file)
        if key not in built:
            built[key] = build_realistic(format_root / "realistic", source, *key)
        return built[key]

    return get


@pytest.fixture(scope="session")
def realistic_sample(format_root: Path):
    """Like `realistic`, from 200 tasks (800 rollouts): for trainers, which tokenize every row."""
    source = write_realistic(format_root / "sample", tasks=200)
    built: dict[tuple[str, str, str], DatasetSummary] = {}

    def get(fmt: str, kind: str, file_format: str) -> DatasetSummary:
        key = (fmt, kind, file_format)
        if key not in built:
            built[key] = build_realistic(format_root / "sample", source, *key, 50)
        return built[key]

    return get

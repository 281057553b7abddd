"""Local mode: `gymops run dataset.yaml` builds the dataset on this machine."""

from __future__ import annotations

from typing import Any

from gym_operator.api.dataset import Dataset
from gym_operator.data.builder import DatasetSummary, build_dataset
from gym_operator.data.sources import resolve_sources
from gym_operator.storage.store import S3Settings, Storage


def run_dataset(dataset: Dataset, output_override: str | None, console: Any) -> DatasetSummary:
    """Build the Dataset; `console` (a rich Console) gets a short report of what was written.

    Sources: `uri` as given; `rolloutJobRef: NAME` from the env var GYMOPS_SOURCE_<NAME>.
    Raises SpecError-like ValueErrors (UnresolvedSource, UnsupportedExport, SourceError).
    """
    spec = dataset.spec
    storage = Storage(S3Settings.from_spec(spec.s3))
    try:
        summary = build_dataset(
            spec,
            name=dataset.metadata.name,
            source_uris=resolve_sources(spec),
            output_uri=output_override or spec.output.uri,
            storage=storage,
        )
    finally:
        storage.close()
    if console is not None:
        _report(summary, console)
    return summary


def _report(summary: DatasetSummary, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"dataset {summary.name} ({summary.kind}, {summary.format})")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("rollouts read", str(summary.counts.input))
    table.add_row("rows written", str(summary.counts.kept))
    table.add_row("train / validation", f"{summary.splits.train} / {summary.splits.validation}")
    for reason, n in summary.counts.dropped.items():
        table.add_row(f"dropped: {reason}", str(n))
    console.print(table)
    console.print(f"card: {summary.card}")

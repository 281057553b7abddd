"""The dataset build: read task groups, curate, build examples, split, export, write the card.

Writes under the output prefix: `<split>-NNNNN.<jsonl|parquet>`, `README.md` (the card),
`reward_histogram.png`, `pass_rate_histogram.png` and, last, `_DATASET.json` (the summary the
controller copies into the Dataset status: counts, splits, files, card, in camelCase).
"""

from __future__ import annotations

import json
import logging
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gym_operator import errors
from gym_operator.api.dataset import DatasetCounts, DatasetSpec, SplitCounts
from gym_operator.data import card, plots, rows, schemas
from gym_operator.data.exporters import (
    EXPORTERS,
    ExportContext,
    check_file_format,
    check_supported,
)
from gym_operator.data.filters import BALANCE, Balancer, Curator
from gym_operator.data.kinds import ExampleBuilder
from gym_operator.data.reader import GroupReader, SourceInfo
from gym_operator.data.splits import SPLITS, split_of
from gym_operator.data.writer import SplitWriter
from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.uri import StorageURI, parse_uri

log = logging.getLogger(__name__)

RESULT_FILE = "_DATASET.json"
CARD_FILE = "README.md"
REWARD_PNG = "reward_histogram.png"
PASS_RATE_PNG = "pass_rate_histogram.png"
SAMPLES = 3
BINS = 20


@dataclass
class DatasetSummary:
    """What a build produced; `status_fields()` is what goes into Dataset.status."""

    name: str
    kind: str
    format: str
    output: str
    counts: DatasetCounts
    splits: SplitCounts
    files: list[str]
    card: str
    sources: list[SourceInfo]
    seconds: float
    max_open_groups: int = 0
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def status_fields(self) -> dict[str, Any]:
        """counts, splits, files, card in the DatasetStatus wire shape."""
        return {
            "counts": self.counts.wire(),
            "splits": self.splits.wire(),
            "files": self.files,
            "card": self.card,
        }

    def result(self) -> dict[str, Any]:
        """The `_DATASET.json` document."""
        return {
            **self.status_fields(),
            "name": self.name,
            "kind": self.kind,
            "format": self.format,
            "output": self.output,
            "sources": [
                {
                    "uri": s.uri,
                    "digest": s.digest,
                    "complete": s.complete,
                    "shards": s.shards,
                    "skippedShards": s.skipped_shards,
                    "inputErrors": s.input_errors,
                }
                for s in self.sources
            ],
            "seconds": round(self.seconds, 3),
            "maxOpenGroups": self.max_open_groups,
        }


class _Histograms:
    """Rewards of every verified rollout and pass rates of every task (compact arrays)."""

    def __init__(self) -> None:
        self.rewards = array("d")
        self.pass_rates = array("d")

    def add(self, group_rows: list[dict[str, Any]], pass_threshold: float) -> None:
        rewards = [r for r in map(rows.reward_of, group_rows) if r is not None]
        if rewards:
            self.rewards.extend(rewards)
            self.pass_rates.append(sum(r >= pass_threshold for r in rewards) / len(rewards))

    def extras(self) -> dict[str, Any]:
        low = min(0.0, min(self.rewards, default=0.0))
        high = max(1.0, max(self.rewards, default=1.0))
        return {
            "reward_total": len(self.rewards),
            "reward_mean": sum(self.rewards) / len(self.rewards) if self.rewards else 0.0,
            "reward_range": (low, high),
            "reward_bins": plots.bin_counts(self.rewards, low, high, BINS),
            "tasks": len(self.pass_rates),
            "pass_bins": plots.bin_counts(self.pass_rates, 0.0, 1.0, 10),
        }


class EmptyDataset(errors.BadSpec, ValueError):
    """The build kept no rows and the spec does not allow an empty dataset: its filters (or its
    sources) must change, so retrying cannot help."""


def empty_message(summary: DatasetSummary) -> str:
    """Why a dataset is empty and what to change."""
    dropped = ", ".join(f"{k} {v}" for k, v in summary.counts.dropped.items()) or "none"
    return (
        f"dataset {summary.name or '(unnamed)'}: 0 rows kept of {summary.counts.input} rollouts "
        f"read (dropped: {dropped}); loosen spec.filters (or check the sources), or set "
        f"spec.output.allowEmpty: true to accept an empty dataset. The card {summary.card} "
        "shows the reward histogram."
    )


def _verifier_name(info: SourceInfo) -> str | None:
    builtin = info.verifier.get("builtin")
    return str(builtin) if builtin else None


def source_names(spec: DatasetSpec, source_uris: list[str]) -> list[str]:
    """Each source's name in row identities: its rolloutJobRef, else its URI."""
    names = []
    for i, uri in enumerate(source_uris):
        ref = spec.sources[i].rollout_job_ref if i < len(spec.sources) else None
        names.append(ref or uri.rstrip("/"))
    return names


def _pass_threshold(spec: DatasetSpec, info: SourceInfo) -> float:
    window = spec.filters.pass_rate
    if window is not None and window.pass_threshold is not None:
        return window.pass_threshold
    return info.pass_threshold


def build_dataset(
    spec: DatasetSpec,
    *,
    name: str,
    source_uris: list[str],
    output_uri: str,
    storage: Storage,
) -> DatasetSummary:
    """Build the dataset from the given source prefixes into `output_uri`."""
    check_supported(spec.format, spec.kind)
    check_file_format(spec.format, spec.output.file_format)
    started = time.monotonic()
    out = parse_uri(output_uri)
    reader = GroupReader(storage, source_uris)
    curator = Curator(spec.filters, responses=spec.kind != "rl")
    examples = ExampleBuilder(spec)
    balancer = Balancer(spec.filters.balance)
    exporter = EXPORTERS[spec.format]
    schema = schemas.schema_for(spec.format, spec.kind)
    writers = {
        s: SplitWriter(storage, out, s, spec.output.file_format, spec.output.rows_per_file, schema)
        for s in SPLITS
    }
    names = source_names(spec, source_uris)
    tool_turns = spec.sft.tool_turns if spec.sft else "context"
    hist = _Histograms()
    samples: list[dict[str, Any]] = []
    for group in reader.groups():
        info = reader.sources[group.source]
        threshold = _pass_threshold(spec, info)
        hist.add(group.rollouts, threshold)
        curated = curator.curate(group, threshold)
        if curated is None:
            continue
        stats, kept = curated
        split = split_of(rows.prompt_key(kept[0]), spec.split.seed, spec.split.validation_fraction)
        writer = writers[split]
        for example in examples.build(group.source, stats, kept):
            if not balancer.admit(example.task):
                continue
            ctx = ExportContext(
                split,
                writer.rows,
                _verifier_name(info),
                source=names[group.source],
                tool_turns=tool_turns,
                reward=info.reward,
            )
            row = exporter(example, ctx)
            writer.write(row)
            if len(samples) < SAMPLES:
                samples.append(row)
    files = [str(uri) for s in SPLITS for uri in writers[s].close()]
    dropped: Counter[str] = Counter()
    dropped.update(reader.counts.dropped)
    dropped.update(curator.dropped)
    dropped.update(examples.dropped)
    dropped[BALANCE] += balancer.dropped
    summary = DatasetSummary(
        name=name,
        kind=spec.kind,
        format=spec.format,
        output=str(out),
        counts=DatasetCounts(
            input=reader.counts.read,
            kept=sum(w.rows for w in writers.values()),
            dropped={k: v for k, v in sorted(dropped.items()) if v},
        ),
        splits=SplitCounts(**{s: writers[s].rows for s in SPLITS}),
        files=files,
        card=str(out.join(CARD_FILE)),
        sources=reader.sources,
        seconds=time.monotonic() - started,
        max_open_groups=reader.max_open_groups,
        extras={
            **hist.extras(),
            "samples": samples,
            "untyped_files": [u for s in SPLITS for u in writers[s].unrepaired],
        },
    )
    _write_card(storage, out, spec, summary)
    _remove_stale(storage, out, set(files))
    storage.write_bytes(out.join(RESULT_FILE), json.dumps(summary.result(), indent=2).encode())
    if not summary.counts.kept and not spec.output.allow_empty:
        raise EmptyDataset(empty_message(summary))
    log.info(
        "dataset %s: %d rollouts read, %d rows written (%s) in %.1fs",
        name,
        summary.counts.input,
        summary.counts.kept,
        ", ".join(f"{k} {v}" for k, v in summary.counts.dropped.items()) or "nothing dropped",
        summary.seconds,
    )
    return summary


def _write_card(
    storage: Storage, out: StorageURI, spec: DatasetSpec, summary: DatasetSummary
) -> None:
    extras = summary.extras
    low, high = extras["reward_range"]
    reward_png = plots.histogram(
        extras["reward_bins"], low, high, title="Reward per verified rollout", xlabel="reward"
    )
    pass_png = plots.histogram(
        extras["pass_bins"],
        0.0,
        1.0,
        title="Pass rate per task",
        xlabel="pass rate",
        ylabel="tasks",
    )
    storage.write_bytes(out.join(REWARD_PNG), reward_png)
    storage.write_bytes(out.join(PASS_RATE_PNG), pass_png)
    text = card.render_card(summary.result(), spec.wire(), extras)
    storage.write_bytes(out.join(CARD_FILE), text.encode())


def _remove_stale(storage: Storage, out: StorageURI, current: set[str]) -> None:
    """Delete data files a previous build of this prefix listed and this one did not write."""
    try:
        previous = json.loads(storage.read_bytes(out.join(RESULT_FILE)))
    except (ObjectNotFound, ValueError):
        return
    for uri in previous.get("files", []):
        if uri not in current and uri.startswith(str(out)):
            storage.delete(uri)

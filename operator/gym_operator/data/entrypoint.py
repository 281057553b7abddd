"""`gymops build-dataset`: the Dataset builder pod's entrypoint."""

from __future__ import annotations

import argparse

from gym_operator.api.dataset import Dataset
from gym_operator.api.loading import SpecError, load_resource
from gym_operator.data.builder import build_dataset
from gym_operator.data.sources import resolve_sources
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.termination import run_worker


def main(args: argparse.Namespace) -> int:
    """Build the dataset of `--spec`; `--source-uri` (repeated) replaces spec.sources in order.

    Exit 0 on success (the summary is in `<output>/_DATASET.json`), 2 for a spec the builder
    cannot use, 1 when the sources cannot be read or the build fails otherwise. On a failure the
    reason is also written to the termination-message file.
    """
    return run_worker(lambda: _build(args), args.termination_log, "dataset build")


def _build(args: argparse.Namespace) -> None:
    """Build one dataset; a GymopsError says how it failed (see `gym_operator.errors`)."""
    try:
        resource = load_resource(args.spec)
    except OSError as exc:
        raise SpecError(args.spec, [f"(file): cannot read it: {exc}"]) from None
    if not isinstance(resource, Dataset):
        raise SpecError(args.spec, [f"kind: expected Dataset, got {resource.kind}"])
    sources = resolve_sources(resource.spec, args.source_uri)
    storage = Storage(S3Settings.from_spec(resource.spec.s3))
    try:
        build_dataset(
            resource.spec,
            name=resource.metadata.name,
            source_uris=sources,
            output_uri=resource.spec.output.uri,
            storage=storage,
        )
    finally:
        storage.close()

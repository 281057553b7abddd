"""`gymops build-dataset`: the Dataset builder pod's entrypoint."""

from __future__ import annotations

import argparse
import logging

from gym_operator.api.dataset import Dataset
from gym_operator.api.loading import SpecError, load_resource
from gym_operator.data.builder import EmptyDataset, build_dataset
from gym_operator.data.exporters import UnsupportedExport
from gym_operator.data.reader import SourceError
from gym_operator.data.sources import UnresolvedSource, resolve_sources
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.termination import write_termination_message

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_BAD_SPEC = 0, 1, 2


def main(args: argparse.Namespace) -> int:
    """Build the dataset of `--spec`; `--source-uri` (repeated) replaces spec.sources in order.

    Exit 0 on success (the summary is in `<output>/_DATASET.json`), 2 for a spec the builder
    cannot use, 1 when the sources cannot be read. On a failure the reason is also written to
    the termination-message file.
    """
    code, reason = _build(args)
    if code != EXIT_OK:
        log.error("%s", reason)
        write_termination_message(args.termination_log, reason)
    return code


def _build(args: argparse.Namespace) -> tuple[int, str]:
    """(exit code, why) of one build."""
    try:
        resource = load_resource(args.spec)
        if not isinstance(resource, Dataset):
            raise SpecError(args.spec, [f"kind: expected Dataset, got {resource.kind}"])
        sources = resolve_sources(resource.spec, args.source_uri)
    except (SpecError, UnresolvedSource) as exc:
        return EXIT_BAD_SPEC, str(exc)
    storage = Storage(S3Settings.from_spec(resource.spec.s3))
    try:
        build_dataset(
            resource.spec,
            name=resource.metadata.name,
            source_uris=sources,
            output_uri=resource.spec.output.uri,
            storage=storage,
        )
    except UnsupportedExport as exc:
        return EXIT_BAD_SPEC, str(exc)
    except (SourceError, EmptyDataset) as exc:
        return EXIT_FAILED, str(exc)
    finally:
        storage.close()
    return EXIT_OK, ""

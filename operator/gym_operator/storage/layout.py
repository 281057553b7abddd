"""Names of everything under an output prefix (the same on file:// and s3://).

<prefix>/_job.json                      JobRecord: spec digest, shard count
<prefix>/shard-00003/part-00012.jsonl.zst   rollouts (or .jsonl.gz, .jsonl, .parquet)
<prefix>/shard-00003/failures-00012.jsonl  typed failure rows of the same commit
<prefix>/shard-00003/errors-00012.jsonl    bad input rows of the same commit
<prefix>/shard-00003/_manifest.json     ShardManifest: the committed parts; others do not exist
<prefix>/shard-00003/_parts-00064-<id>.json  64 sealed part entries, named by the manifest
<prefix>/_SUCCESS                       written last: every shard manifest, totals
"""

from __future__ import annotations

from gym_operator.storage.uri import StorageURI

JOB_RECORD = "_job.json"
MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"

PART_SUFFIXES: dict[str, str] = {
    "zstd": ".jsonl.zst",
    "gzip": ".jsonl.gz",
    "none": ".jsonl",
    "parquet": ".parquet",
}


def shard_dir(prefix: StorageURI, shard: int) -> StorageURI:
    """Directory of one shard."""
    return prefix.join(f"shard-{shard:05d}")


def manifest_uri(prefix: StorageURI, shard: int) -> StorageURI:
    """The shard's manifest."""
    return shard_dir(prefix, shard).join(MANIFEST)


def part_name(seq: int, suffix: str) -> str:
    """File name of a rollout part, e.g. part-00012.jsonl.zst."""
    return f"part-{seq:05d}{suffix}"


def failures_name(seq: int) -> str:
    """File name of the failure rows committed with part `seq`."""
    return f"failures-{seq:05d}.jsonl"


def errors_name(seq: int) -> str:
    """File name of the bad input rows committed with part `seq`."""
    return f"errors-{seq:05d}.jsonl"


def segment_name(first_seq: int, token: str) -> str:
    """File name of a sealed segment of part entries (`token` makes the name never reused)."""
    return f"_parts-{first_seq:05d}-{token}.json"

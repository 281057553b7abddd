"""The job that owns an output prefix: spec digest, `_job.json`, refusal of a changed spec.

The digest covers only what changes results: input, policy model/api/baseURL/embedded, sampling
(except concurrency), verifier kind and config, reward, parallelism and output format/compression.
Retry settings, concurrency, part sizes and the output URI itself may change between runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.storage.manifest import JobRecord, read_job_record, write_job_record
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI


class JobConflict(Exception):
    """The output prefix holds results of a different spec."""


def digest_fields(spec: RolloutJobSpec) -> dict[str, Any]:
    """The parts of the spec that decide the results."""
    wire = spec.wire()
    sampling = dict(wire.get("sampling", {}))
    sampling.pop("concurrency", None)
    policy = {
        k: v for k, v in wire["policy"].items() if k in ("model", "api", "baseURL", "embedded")
    }
    verifier = {
        k: v for k, v in wire["verifier"].items() if k in ("builtin", "config", "image", "url")
    }
    return {
        "input": wire["input"],
        "policy": policy,
        "sampling": sampling,
        "verifier": verifier,
        "reward": wire.get("reward", {}),
        "parallelism": spec.parallelism,
        "output": {"format": spec.output.format, "compression": spec.output.compression},
    }


def spec_digest(spec: RolloutJobSpec) -> str:
    """sha256 over the result-deciding fields, as canonical JSON."""
    canonical = json.dumps(digest_fields(spec), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def prepare_prefix(
    storage: Storage, prefix: StorageURI, spec: RolloutJobSpec, *, restart: bool
) -> str:
    """Claim the prefix for this spec; returns the digest.

    A prefix written under another digest is refused (JobConflict) unless `restart`, which deletes
    everything under it first.
    """
    digest = spec_digest(spec)
    record = read_job_record(storage, prefix)
    if record is not None and record.digest == digest and not restart:
        return digest
    if record is not None and not restart:
        raise JobConflict(
            f"{prefix} holds rollouts of a different spec (digest {record.digest[:19]}..., "
            f"this spec {digest[:19]}...); changed fields would mix results. Use another "
            "output URI, or --restart to delete what is there and start over."
        )
    if restart:
        storage.delete_prefix(prefix)
    write_job_record(
        storage,
        prefix,
        JobRecord(
            digest=digest,
            num_shards=spec.parallelism,
            num_repeats=spec.sampling.num_repeats,
            spec=digest_fields(spec),
        ),
    )
    return digest

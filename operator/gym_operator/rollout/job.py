"""The job that owns an output prefix: spec digest, `_job.json`, refusal of a changed spec or input.

The digest covers only what changes results: input, policy model/api/baseURL/embedded, sampling
(except concurrency), verifier kind and config, reward, parallelism and output format/compression.
Retry settings, concurrency, part sizes and the output URI itself may change between runs.
The input object's identity (size plus S3 ETag, or size plus file mtime_ns) is recorded too: a
resume against a changed input is refused like a changed spec. URLs are recorded without their
userinfo (`user:password@`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from gym_operator import redaction
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.storage.manifest import JobRecord, read_job_record, write_job_record
from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.uri import StorageURI, parse_uri


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
    return _without_userinfo(
        {
            "input": wire["input"],
            "policy": policy,
            "sampling": sampling,
            "verifier": verifier,
            "reward": wire.get("reward", {}),
            "parallelism": spec.parallelism,
            "output": {"format": spec.output.format, "compression": spec.output.compression},
        }
    )


def _without_userinfo(value: Any) -> Any:
    """Every URL in the value without `user:password@` (a credential, never part of results)."""
    if isinstance(value, str):
        return redaction.strip_userinfo(value)
    if isinstance(value, dict):
        return {k: _without_userinfo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_userinfo(v) for v in value]
    return value


def spec_digest(spec: RolloutJobSpec) -> str:
    """sha256 over the result-deciding fields, as canonical JSON."""
    canonical = json.dumps(digest_fields(spec), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def input_fingerprint(storage: Storage, uri: str) -> dict[str, Any]:
    """Identity of the input object now: size and S3 ETag, or size and file mtime_ns."""
    loc = parse_uri(uri)
    if loc.scheme == "file":
        try:
            stat = os.stat(loc.key)
        except FileNotFoundError:
            raise ObjectNotFound(str(loc)) from None
        return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    s3 = storage.s3
    try:
        head = s3.head_object(Bucket=loc.bucket, Key=loc.key)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ObjectNotFound(str(loc)) from None
        exc.add_note(f"while reading the metadata of {loc}")
        raise
    return {"size": head["ContentLength"], "etag": head["ETag"]}


def prepare_prefix(
    storage: Storage, prefix: StorageURI, spec: RolloutJobSpec, *, restart: bool
) -> str:
    """Claim the prefix for this spec and input; returns the digest.

    A prefix written under another digest, or from an input object that has changed since, is
    refused (JobConflict) unless `restart`, which deletes everything under it first.
    """
    digest = spec_digest(spec)
    fingerprint = input_fingerprint(storage, spec.input.uri)
    record = read_job_record(storage, prefix)
    if record is not None and record.digest == digest and not restart:
        if record.input is not None and record.input != fingerprint:
            raise JobConflict(
                f"spec.input.uri {spec.input.uri} changed since {prefix} was started "
                f"(was {_describe(record.input)}, now {_describe(fingerprint)}); resuming would "
                "mix rollouts of two inputs. Use another output URI, or --restart to delete "
                "what is there and start over."
            )
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
            input=fingerprint,
        ),
    )
    return digest


def _describe(fingerprint: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(fingerprint.items()))

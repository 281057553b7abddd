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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gym_operator import errors, redaction
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.storage import layout
from gym_operator.storage.manifest import JobRecord, read_job_record, write_job_record
from gym_operator.storage.store import ObjectNotFound, Storage
from gym_operator.storage.uri import StorageURI, parse_uri


class JobConflict(errors.OutputConflict):
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
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise ObjectNotFound(str(loc)) from None
        exc.add_note(f"while reading the metadata of {loc}")
        raise
    return {"size": head["ContentLength"], "etag": head["ETag"]}


@dataclass(frozen=True)
class Claim:
    """What `check_prefix` found: the digest to run under and what `claim_prefix` must do."""

    digest: str
    fingerprint: dict[str, Any]
    record: JobRecord | None
    restart: bool

    @property
    def fresh(self) -> bool:
        """Nothing of a job is in the prefix yet, and nothing is to be deleted first."""
        return self.record is None and not self.restart


def check_prefix(
    storage: Storage, prefix: StorageURI, spec: RolloutJobSpec, *, restart: bool
) -> Claim:
    """Whether this spec may run in the prefix; reads only, writes and deletes nothing.

    A prefix written under another digest, or from an input object that has changed since, is
    refused (JobConflict) unless `restart`. `restart` itself is refused (JobConflict) where it
    could delete what gym-operator did not write: see `check_restart`.
    """
    digest = spec_digest(spec)
    fingerprint = input_fingerprint(storage, spec.input.uri)
    record = read_job_record(storage, prefix)
    if restart:
        check_restart(storage, prefix, spec, record)
        return Claim(digest, fingerprint, record, restart=True)
    if record is not None and record.digest == digest:
        if record.input is not None and record.input != fingerprint:
            raise JobConflict(
                f"spec.input.uri {spec.input.uri} changed since {prefix} was started "
                f"(was {_describe(record.input)}, now {_describe(fingerprint)}); resuming would "
                "mix rollouts of two inputs. Use another output URI, or --restart to delete "
                "what is there and start over."
            )
    elif record is not None:
        changes = spec_changes(record.spec, digest_fields(spec))
        listed = "; ".join(changes) if changes else f"digest {record.digest[:19]}..."
        raise JobConflict(
            f"{prefix} holds rollouts of a different spec ({listed}); resuming would mix "
            "results. Use another output URI, or --restart to delete what is there and start "
            "over."
        )
    return Claim(digest, fingerprint, record, restart=False)


def claim_prefix(storage: Storage, prefix: StorageURI, spec: RolloutJobSpec, claim: Claim) -> str:
    """Take the prefix for this spec (after every check passed); returns the digest.

    With `restart`, gym-operator's own objects under it (`_job.json`, `_SUCCESS`, `shard-*`)
    are deleted first; anything else there is left alone.
    """
    if claim.restart:
        for obj in owned_objects(storage, prefix):
            storage.delete(obj)
    elif claim.record is not None:
        return claim.digest
    write_job_record(
        storage,
        prefix,
        JobRecord(
            digest=claim.digest,
            num_shards=spec.parallelism,
            num_repeats=spec.sampling.num_repeats,
            spec=digest_fields(spec),
            input=claim.fingerprint,
        ),
    )
    return claim.digest


def prepare_prefix(
    storage: Storage, prefix: StorageURI, spec: RolloutJobSpec, *, restart: bool
) -> str:
    """Check, then claim the prefix (see `check_prefix` and `claim_prefix`); returns the digest."""
    return claim_prefix(storage, prefix, spec, check_prefix(storage, prefix, spec, restart=restart))


def check_restart(
    storage: Storage, prefix: StorageURI, spec: RolloutJobSpec, record: JobRecord | None
) -> None:
    """Refuse --restart on a prefix that is a root or home directory, holds the input, or holds
    objects but no `_job.json` of ours (JobConflict naming what is there)."""
    if _is_root(prefix):
        raise JobConflict(
            f"--restart refused: {prefix} is a bucket or file-system root or a home directory; "
            "nothing was deleted. Give spec.output.uri (or --output) a directory of its own."
        )
    source = parse_uri(spec.input.uri)
    if _below(source, prefix):
        raise JobConflict(
            f"--restart refused: {prefix} holds the input file {source}; nothing was deleted. "
            "Write the output to a directory of its own."
        )
    if record is not None:
        return
    objects = storage.list(prefix)
    if objects:
        names = ", ".join(_relative(o, prefix) for o in objects[:5])
        more = f" and {len(objects) - 5} more" if len(objects) > 5 else ""
        raise JobConflict(
            f"--restart refused: {prefix} holds {len(objects)} object(s) ({names}{more}) but "
            f"no {layout.JOB_RECORD}, so gym-operator did not write them; nothing was deleted. "
            "Use another output URI, or remove them yourself if they are not needed."
        )


def owned_objects(storage: Storage, prefix: StorageURI) -> list[StorageURI]:
    """The objects of a job's layout under the prefix: `_job.json`, `_SUCCESS`, `shard-*/...`."""
    own = []
    for obj in storage.list(prefix):
        rel = _relative(obj, prefix)
        if rel in (layout.JOB_RECORD, layout.SUCCESS) or rel.startswith("shard-"):
            own.append(obj)
    return own


def spec_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`field: old -> new` for each result-deciding field that differs."""
    before, after = _flatten(old), _flatten(new)
    return [
        f"{key}: {_show(before.get(key))} -> {_show(after.get(key))}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, _UNSET) != after.get(key, _UNSET)
    ]


_UNSET = object()


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{path}.{key}" if path else str(key)))
        return out
    return {path: value}


def _show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value)[:80]


def _relative(obj: StorageURI, prefix: StorageURI) -> str:
    return obj.key[len(prefix.key.rstrip("/")) :].lstrip("/")


def _is_root(prefix: StorageURI) -> bool:
    if prefix.scheme == "s3":
        return not prefix.key.strip("/")
    path = Path(prefix.key)
    return path == Path(path.anchor) or path in (Path.home(), Path.home().parent)


def _below(obj: StorageURI, prefix: StorageURI) -> bool:
    if (obj.scheme, obj.bucket) != (prefix.scheme, prefix.bucket):
        return False
    base = prefix.key.rstrip("/")
    return not base or obj.key.startswith(base + "/")


def _describe(fingerprint: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(fingerprint.items()))

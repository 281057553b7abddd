"""Progress of a RolloutJob from its shard manifests: counts, percent, rollouts/s, ETA, rewards.

The manifests are read with the job's own S3 settings: its spec.s3 endpoint and region, and the
key pair of its spec.s3.credentialsSecretRef when it names one (the operator reads that Secret:
RBAC `get` on secrets), else the operator's own credentials. A read that fails raises
ProgressUnreadable with one line naming the object, the cause and the fix.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gym_operator.api.common import S3Spec
from gym_operator.controller.status import now_iso
from gym_operator.storage import errors as storage_errors
from gym_operator.storage import manifest as manifests_io
from gym_operator.storage.manifest import ShardManifest
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri

# The rate is measured over at least this long, so it spans part commits (output.partSeconds
# defaults to 5 s; users may set minutes) and never reads 0 just because no part landed since the
# last read.
RATE_WINDOW_MIN_SECONDS = 45.0
# ... and the reference sample is renewed after this long, so the rate follows recent changes.
RATE_WINDOW_MAX_SECONDS = 180.0


@dataclass(frozen=True)
class Sample:
    """Rollouts done at a moment; two samples give the recent throughput."""

    at: float
    done: int

    def encode(self) -> str:
        """`<unix time> <done>`, as kept in the progress-sample annotation."""
        return f"{self.at:.3f} {self.done}"

    @classmethod
    def decode(cls, text: str | None) -> Sample | None:
        """Parse an annotation value; None when absent or malformed."""
        if not text:
            return None
        try:
            at, done = text.split()
            return cls(at=float(at), done=int(done))
        except ValueError:
            return None


@dataclass(frozen=True)
class ProgressReport:
    """What goes into status.progress and status.rewards, and the sample to keep."""

    progress: dict[str, Any]
    rewards: dict[str, Any]
    sample: Sample


def expected_total(manifests: Sequence[ShardManifest], hint: int | None) -> int | None:
    """Rollouts expected: the shards' own counts once every shard knows it, else the hint."""
    if manifests:
        num_shards = manifests[0].num_shards
        known = [m.expected_rollouts for m in manifests if m.expected_rollouts is not None]
        if len(manifests) == num_shards and len(known) == num_shards:
            return sum(int(k) for k in known)
    return hint


def _fallback_rate(manifests: Sequence[ShardManifest], done: int) -> float | None:
    if not manifests or done == 0:
        return None
    span = max(m.updated_at for m in manifests) - min(m.started_at for m in manifests)
    return done / span if span > 0 else None


def aggregate(
    manifests: Sequence[ShardManifest],
    total_hint: int | None,
    previous: Sample | None,
    now: float,
    *,
    running: bool = True,
) -> ProgressReport:
    """Sum the shards; the rate comes from the previous sample (or the shards' own spans). The
    concurrency limit is the unfinished shards' sum while `running` (their pods sample now)."""
    completed = sum(m.completed for m in manifests)
    failed = sum(m.failed for m in manifests)
    passed = sum(m.passed for m in manifests)
    reward_sum = sum(m.reward_sum for m in manifests)
    done = completed + failed
    total = expected_total(manifests, total_hint)
    window = now - previous.at if previous is not None else 0.0
    usable = previous is not None and done >= previous.done
    if usable and window >= RATE_WINDOW_MIN_SECONDS:
        assert previous is not None
        rate: float | None = (done - previous.done) / window
    else:
        rate = _fallback_rate(manifests, done)
    keep_sample = usable and window < RATE_WINDOW_MAX_SECONDS
    finished = bool(manifests) and all(m.finished for m in manifests)
    percent = 100.0 if finished and total is None else 0.0
    if total:
        percent = min(100.0, round(100.0 * done / total, 2))
    eta: float | None = None
    if total is not None and rate and rate > 0:
        eta = round(max(total - done, 0) / rate, 1)
    limits = [m.concurrency_limit for m in manifests if running and not m.finished]
    progress: dict[str, Any] = {
        "total": total,
        "completed": completed,
        "failed": failed,
        "percent": percent,
        "rolloutsPerSecond": round(rate, 3) if rate is not None else None,
        "etaSeconds": 0.0 if finished else eta,
        "concurrencyLimit": sum(filter(None, limits)) or None,
        "summary": f"{done}/{total if total is not None else '?'}",
        "lastUpdated": now_iso(),
    }
    rewards: dict[str, Any] = {
        "mean": round(reward_sum / completed, 4) if completed else None,
        "passRate": round(passed / completed, 4) if completed else None,
    }
    return ProgressReport(
        progress={k: v for k, v in progress.items() if v is not None},
        rewards={k: v for k, v in rewards.items() if v is not None},
        sample=previous if keep_sample and previous is not None else Sample(at=now, done=done),
    )


def same_reading(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Two progress readings that differ only in lastUpdated: status need not be written."""
    if old is None:
        return False
    drop = {"lastUpdated"}
    return {k: v for k, v in old.items() if k not in drop} == {
        k: v for k, v in new.items() if k not in drop
    }


class StorageCache:
    """One Storage (one S3 client) per distinct S3 settings, shared by all resources."""

    def __init__(self) -> None:
        self._stores: dict[S3Settings, Storage] = {}
        self._lock = threading.Lock()

    def get(self, settings: S3Settings) -> Storage:
        """The Storage for these settings, created on first use."""
        with self._lock:
            if settings not in self._stores:
                self._stores[settings] = Storage(settings)
            return self._stores[settings]

    def close(self) -> None:
        """Close every client."""
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()


def read_manifests(storage: Storage, output_uri: str) -> list[ShardManifest]:
    """Every shard manifest under a RolloutJob's output prefix."""
    return manifests_io.read_all_manifests(storage, parse_uri(output_uri))


class ProgressUnreadable(Exception):
    """The shard manifests cannot be read; the message names the object, cause and fix."""


SecretReader = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the Secret object, or None when it does not exist."""


def job_s3_settings(
    base: S3Settings, spec: S3Spec | None, namespace: str, read_secret: SecretReader
) -> S3Settings:
    """`base` (the job's endpoint and region, else the operator's) with the job's own key pair
    from spec.s3.credentialsSecretRef when it names one; else the operator's credentials."""
    ref = spec.credentials_secret_ref if spec is not None else None
    if ref is None:
        return base
    where = f"Secret {namespace}/{ref.name} (spec.s3.credentialsSecretRef)"
    secret = read_secret(namespace, ref.name)
    if secret is None:
        raise ProgressUnreadable(f"{where} does not exist; create it or fix the name")
    data = secret.get("data") or {}
    keys = (ref.access_key_id_key, ref.secret_access_key_key)
    missing = [key for key in keys if not data.get(key)]
    if missing:
        raise ProgressUnreadable(
            f"{where} has no key {', '.join(missing)}; add it or set the key names"
        )
    try:
        key_id, secret_key = (base64.b64decode(data[key]).decode() for key in keys)
    except (ValueError, UnicodeDecodeError):
        raise ProgressUnreadable(f"{where}: a key is not valid base64 text") from None
    return dataclasses.replace(base, access_key_id=key_id, secret_access_key=secret_key)


def read_job_manifests(storage: Storage, output_uri: str) -> list[ShardManifest]:
    """The job's shard manifests; ProgressUnreadable with one line saying what to fix."""
    try:
        return read_manifests(storage, output_uri)
    except Exception as exc:
        explained = storage_errors.explain(exc)
        raise ProgressUnreadable(
            f"cannot read progress from {output_uri}: "
            + (explained or f"{type(exc).__name__}: {exc}")
        ) from exc

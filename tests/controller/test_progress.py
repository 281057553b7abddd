"""Progress from shard manifests: counts, percent, rollouts/s, ETA, reward mean and pass rate."""

from __future__ import annotations

import boto3

from gym_operator.controller import progress
from gym_operator.storage import manifest as mf
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import parse_uri


def shard(index: int, completed: int, failed: int = 0, **extra: object) -> mf.ShardManifest:
    fields = {
        "shard": index,
        "num_shards": 2,
        "job_digest": "d",
        "num_repeats": 2,
        "completed": completed,
        "failed": failed,
        "started_at": 1000.0,
        "updated_at": 1010.0,
    }
    fields.update(extra)
    return mf.ShardManifest(**fields)


def test_counts_percent_and_rewards() -> None:
    shards = [
        shard(0, 6, 1, passed=3, reward_sum=4.5, expected_rollouts=10),
        shard(1, 2, 1, passed=1, reward_sum=1.5, expected_rollouts=10),
    ]
    report = progress.aggregate(shards, None, progress.Sample(at=950.0, done=0), now=1010.0)
    assert report.progress["total"] == 20
    assert report.progress["completed"] == 8 and report.progress["failed"] == 2
    assert report.progress["percent"] == 50.0
    assert report.progress["rolloutsPerSecond"] == round(10 / 60, 3)
    assert report.progress["etaSeconds"] == 60.0
    assert report.rewards == {"mean": 0.75, "passRate": 0.5}
    assert report.sample == progress.Sample(at=950.0, done=0)


def test_rate_does_not_drop_to_zero_between_part_commits() -> None:
    shards = [shard(0, 10, expected_rollouts=40)]  # started 1000, last commit 1010
    just_sampled = progress.Sample(at=1012.0, done=10)
    report = progress.aggregate(shards, None, just_sampled, now=1014.0)
    assert report.progress["rolloutsPerSecond"] == 1.0  # the shard's own span, not 0/2 s
    assert report.sample == just_sampled


def test_reference_sample_is_renewed_after_the_window() -> None:
    old = progress.Sample(at=800.0, done=0)
    report = progress.aggregate([shard(0, 10)], None, old, now=1010.0)
    assert report.progress["rolloutsPerSecond"] == round(10 / 210, 3)
    assert report.sample == progress.Sample(at=1010.0, done=10)


def test_concurrency_limit_is_the_running_shards_sum() -> None:
    shards = [
        shard(0, 4, concurrency_limit=48),
        shard(1, 6, concurrency_limit=16),
        shard(2, 9, concurrency_limit=64, finished=True),  # done: sends nothing any more
    ]
    report = progress.aggregate(shards, None, None, now=1010.0)
    assert report.progress["concurrencyLimit"] == 64
    suspended = progress.aggregate(shards, None, None, now=1010.0, running=False)
    assert "concurrencyLimit" not in suspended.progress
    finished = [s.model_copy(update={"finished": True}) for s in shards]
    assert "concurrencyLimit" not in progress.aggregate(finished, None, None, 1010.0).progress


def test_total_falls_back_to_the_hint_until_every_shard_reports() -> None:
    report = progress.aggregate([shard(0, 4, expected_rollouts=10)], 40, None, now=1010.0)
    assert report.progress["total"] == 40
    assert report.progress["rolloutsPerSecond"] == 0.4  # the shard's own span: 4 in 10 s


def test_nothing_committed_yet() -> None:
    report = progress.aggregate([], None, None, now=5.0)
    assert report.progress["completed"] == 0 and "total" not in report.progress
    assert report.rewards == {}


def test_sample_round_trip() -> None:
    sample = progress.Sample(at=12.5, done=7)
    assert progress.Sample.decode(sample.encode()) == sample
    assert progress.Sample.decode("garbage") is None


def test_reads_manifests_from_s3(s3_bucket: str, s3_env: str) -> None:
    store = Storage(S3Settings(endpoint_url=s3_env, region="us-east-1"))
    prefix = parse_uri(f"s3://{s3_bucket}/run/")
    for item in (shard(0, 3), shard(1, 5)):
        mf.write_manifest(store, prefix, item)
    cache = progress.StorageCache()
    found = progress.read_manifests(cache.get(store.s3_settings), f"s3://{s3_bucket}/run/")
    assert [m.completed for m in found] == [3, 5]
    assert cache.get(store.s3_settings) is cache.get(
        S3Settings(endpoint_url=s3_env, region="us-east-1")
    )
    cache.close()
    boto3.client("s3", endpoint_url=s3_env).list_objects_v2(Bucket=s3_bucket)


def test_a_reading_that_only_aged_is_the_same() -> None:
    old = {"completed": 3, "failed": 0, "percent": 15.0, "lastUpdated": "2026-01-01T00:00:00Z"}
    assert progress.same_reading(old, {**old, "lastUpdated": "2026-01-01T00:01:00Z"})
    assert not progress.same_reading(old, {**old, "completed": 4})
    assert not progress.same_reading(None, old)

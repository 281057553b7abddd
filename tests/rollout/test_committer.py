"""The committer: buffered rows exist once committed, with one set of counts everywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gym_operator.api.rolloutjob import FailurePolicySpec, OutputSpec
from gym_operator.rollout.committer import ShardCommitter, write_success_if_complete
from gym_operator.rollout.output import read_committed
from gym_operator.storage.manifest import ShardManifest, read_manifest, read_success
from gym_operator.storage.store import Storage
from gym_operator.storage.tally import Tally
from gym_operator.storage.uri import parse_uri

REPEATS = 2


def rollout_row(task: int, repeat: int, reward: float) -> dict:
    return {"_ng_task_index": task, "_ng_rollout_index": repeat, "reward": reward, "response": {}}


def committer_at(
    tmp_path: Path,
    live: Tally | None = None,
    line_counts: asyncio.Future[list[int]] | None = None,
    **output: object,
) -> ShardCommitter:
    manifest = ShardManifest(shard=0, num_shards=1, job_digest="d", num_repeats=REPEATS)
    spec = OutputSpec(uri=str(tmp_path / "out"), **output)
    return ShardCommitter(
        Storage(), parse_uri(spec.uri), manifest, output=spec, live=live, line_counts=line_counts
    )


async def test_nothing_exists_until_committed_then_all_of_it_with_its_counts(
    tmp_path: Path,
) -> None:
    live = Tally()
    committer = committer_at(tmp_path, live)
    committer.add_rollout(0, rollout_row(0, 0, 1.0), passed=True, truncated=False)
    committer.add_rollout(1, rollout_row(0, 1, 0.25), passed=False, truncated=True)
    committer.add_failure(2, (1, 0), {"class": "timeout", "message": "took too long"})
    committer.add_bad_row(4, REPEATS, {"line": 3, "_ng_task_index": 2, "reason": "not JSON"})
    prefix = parse_uri(str(tmp_path / "out"))
    assert read_manifest(Storage(), prefix, 0) is None
    assert len(committer) == 4

    await committer.commit()

    manifest = read_manifest(Storage(), prefix, 0)
    assert manifest is not None
    counts = Tally.model_validate(manifest.model_dump(include=set(Tally.model_fields)))
    assert (
        counts
        == live
        == Tally(
            completed=2,
            failed=1,
            input_errors=1,
            truncated=1,
            passed=1,
            reward_sum=1.25,
            failure_classes={"timeout": 1},
        )
    )
    assert manifest.done_slots().intervals() == [(0, 3), (4, 6)]
    assert manifest.failure_examples == {"timeout": "took too long"}
    out = read_committed(Storage(), prefix)
    assert sorted(r["reward"] for r in out.rollouts) == [0.25, 1.0]
    assert [f["failure"]["runs"] for f in out.failures] == [1]
    assert len(committer) == 0


async def test_each_commit_adds_a_part_and_an_empty_buffer_commits_nothing(
    tmp_path: Path,
) -> None:
    committer = committer_at(tmp_path, compression="gzip")
    for slot in range(3):
        committer.add_rollout(slot, rollout_row(slot // 2, slot % 2, 1.0), True, False)
        await committer.commit()
    await committer.commit()
    manifest = committer.manifest
    assert [p.seq for p in manifest.parts] == [0, 1, 2]
    assert all(p.rollouts_file.endswith(".jsonl.gz") for p in manifest.parts)
    assert manifest.completed == 3 and not manifest.finished


async def test_the_timer_commits_every_part_seconds_and_on_request(tmp_path: Path) -> None:
    committer = committer_at(tmp_path, partSeconds=0.2)
    timer = asyncio.create_task(committer.run_timer())
    try:
        committer.add_rollout(0, rollout_row(0, 0, 1.0), True, False)
        async with asyncio.timeout(30):
            while not committer.manifest.parts:
                await asyncio.sleep(0.05)
        committer.add_rollout(1, rollout_row(0, 1, 1.0), True, False)
        committer.request_flush()
        async with asyncio.timeout(30):
            while len(committer.manifest.parts) < 2:
                await asyncio.sleep(0.05)
    finally:
        timer.cancel()
    assert committer.manifest.completed == 2


async def test_the_line_count_sets_the_expected_rollouts(tmp_path: Path) -> None:
    counted: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
    counted.set_result([5])
    committer = committer_at(tmp_path, line_counts=counted)
    committer.add_bad_row(0, REPEATS, {"line": 1, "_ng_task_index": 0, "reason": "bad"})
    await committer.commit()
    assert committer.manifest.expected_rollouts == (5 - 1) * REPEATS


async def test_a_finished_shard_completes_the_job_unless_the_policy_fails_it(
    tmp_path: Path,
) -> None:
    committer = committer_at(tmp_path)
    prefix = parse_uri(str(tmp_path / "out"))
    committer.add_failure(0, (0, 0), {"class": "http_4xx", "status": 400, "message": "no"})
    committer.add_rollout(1, rollout_row(0, 1, 1.0), True, False)
    await committer.commit()
    committer.finish(expected_rollouts=2)
    assert committer.manifest.finished
    strict = FailurePolicySpec(maxFailedFraction=0.1, minFinished=0)
    assert not write_success_if_complete(Storage(), prefix, strict, 1, "d")
    assert read_success(Storage(), prefix) is None
    assert write_success_if_complete(Storage(), prefix, FailurePolicySpec(), 1, "d")
    marker = read_success(Storage(), prefix)
    assert marker is not None and (marker.completed, marker.failed) == (1, 1)

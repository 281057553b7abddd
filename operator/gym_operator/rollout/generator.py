"""One shard of a RolloutJob: sample, verify, reward and commit every (task, repeat) exactly once.

Sliding window, not batches: the shard's tasks stream from the input in batches; each (task,
repeat) not yet committed becomes a rollout coroutine once there is room for it, so memory follows
the concurrency limit, not tasks x repeats. A rollout has two stages (rollout.sampler): the model
side, where model requests in flight are gated by the window, and the verifier side. It leaves the
model side as soon as its answer arrives, so verification never holds the window; each stage has
its own bound, a multiple of the window's current limit. Outcomes go to the breaker and the
committer (rollout.committer); a slot is done once its part is in the manifest, and on restart the
manifest's done set is skipped. The slot of (task, repeat) is `(task_index // N) * R + repeat`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator

from gym_operator import errors, metrics
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.rollout import requeue
from gym_operator.rollout.breaker import (
    EndpointBreaker,
    EndpointDown,
    HeldFailure,
    is_endpoint_failure,
)
from gym_operator.rollout.committer import ShardCommitter, write_success_if_complete
from gym_operator.rollout.sampler import Answer, Clients, Failed, Outcome, Rollout, Sampler
from gym_operator.rollout.stage import Stage
from gym_operator.rollout.tasks import BadRow, Task, count_shard_lines, iter_shard
from gym_operator.rollout.window import AimdWindow
from gym_operator.storage.manifest import ShardManifest, read_manifest, read_success
from gym_operator.storage.store import Storage
from gym_operator.storage.tally import Tally
from gym_operator.storage.uri import StorageURI, parse_uri

__all__ = ["VERIFYING_PER_SLOT", "Clients", "ShardGenerator", "ShardInterrupted", "ShardStats"]

log = logging.getLogger(__name__)
READ_BATCH = 256
DRAIN_SECONDS = 20.0
"""On SIGTERM, how long rollouts in progress may take to finish (Kubernetes grants 30 s)."""
SAMPLING_PER_SLOT = 2
"""Rollouts on the model side per window slot: the extra ones wait out a retry backoff or a
tool call between turns while the others keep the window full."""
VERIFYING_PER_SLOT = 4
"""Rollouts on the verifier side per window slot. Verifications in flight are the rollout rate
times the verifier's latency, so a verifier up to 4x slower than the model keeps the window full;
past that, answers wait for a place and sampling slows down instead of piling up in memory."""


class ShardInterrupted(errors.Interrupted):
    """The shard stopped on request (SIGTERM); what was done is committed, the rest resumes."""


class ShardStats(Tally):
    """Live counts of one shard (committed and still buffered), for progress reporting."""

    shard: int
    resumed: int = 0
    """Slots already committed when this run started (rollouts, failures, bad rows x repeats)."""
    valid_tasks: int = 0
    finished: bool = False
    concurrency_limit: int = 0
    """Model requests this shard may have in flight now (fixed, cut on 429s, or auto)."""

    @property
    def done(self) -> int:
        """Rollouts with a final outcome (reward or failure)."""
        return self.completed + self.failed


class ShardGenerator:
    """Runs one shard to completion (or until stopped)."""

    def __init__(
        self,
        spec: RolloutJobSpec,
        *,
        storage: Storage,
        prefix: StorageURI,
        shard: int,
        num_shards: int,
        digest: str,
        clients: Clients,
        window: AimdWindow,
        on_progress: Callable[[ShardStats], None] | None = None,
        stop: asyncio.Event | None = None,
        drain_seconds: float = DRAIN_SECONDS,
        line_counts: asyncio.Future[list[int]] | None = None,
        claimed: asyncio.Event | None = None,
    ) -> None:
        self.spec = spec
        self.storage = storage
        self.prefix = prefix
        self.shard = shard
        self.num_shards = num_shards
        self.digest = digest
        self.window = window
        self.on_progress = on_progress
        self.repeats = spec.sampling.num_repeats
        self.stats = ShardStats(shard=shard)
        self.sampler = Sampler(spec, clients, window, stopping=lambda: self._draining)
        self.breaker = EndpointBreaker(spec.retry.endpoint_failure_limit)
        self.drain_seconds = drain_seconds
        self._stop = stop or asyncio.Event()
        self._halt = asyncio.Event()
        """Set by the breaker: this shard stops, other shards sharing `stop` go on."""
        self._draining = False
        self._sampling = Stage(lambda: SAMPLING_PER_SLOT * max(1, int(window.limit)))
        self._verifying = Stage(lambda: VERIFYING_PER_SLOT * max(1, int(window.limit)))
        self._rollouts: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._crash: BaseException | None = None
        self._crashed = asyncio.Event()
        self._line_counts = line_counts
        """Non-empty input lines per shard (counted once per process, see runner)."""
        self._committer: ShardCommitter | None = None
        self._claimed = claimed
        """Set once the prefix is this job's; until then rows are sampled but not committed."""

    @property
    def committer(self) -> ShardCommitter:
        """The shard's committer (once `run` has read the manifest)."""
        assert self._committer is not None, "run() reads the manifest first"
        return self._committer

    def request_stop(self) -> None:
        """Stop taking new work, let work in progress end (drain_seconds), commit (SIGTERM)."""
        self._stop.set()

    def slot(self, task_index: int, repeat: int) -> int:
        """The shard-local slot of (task, repeat)."""
        return (task_index // self.num_shards) * self.repeats + repeat

    async def run(self) -> ShardStats:
        """Do every missing slot, commit, mark the shard finished; returns its stats."""
        manifest = await asyncio.to_thread(self._load_manifest)
        if self._line_counts is None and not manifest.finished:
            self._line_counts = asyncio.ensure_future(asyncio.to_thread(self._count_lines))
        self._committer = ShardCommitter(
            self.storage,
            self.prefix,
            manifest,
            output=self.spec.output,
            live=self.stats,
            line_counts=self._line_counts,
            claimed=self._claimed,
            limit=lambda: int(self.window.limit),
        )
        self.stats.add(manifest)
        self.stats.resumed = (
            manifest.completed + manifest.failed + manifest.input_errors * self.repeats
        )
        if manifest.finished:
            self.stats.finished = True
            await asyncio.to_thread(self._write_success_if_complete)
            return self.stats
        completed = await self._run_until_done_or_stopped()
        if completed:
            held = self.breaker.settle()
            if held is None:
                # Nothing ever answered: the endpoint may be down still (on a cluster, a verifier
                # Service whose pods are not ready yet), so they are sampled again.
                completed = False
            else:
                self._record_failures(held)
        await self.committer.commit()
        if not completed and self.breaker.tripped:
            raise EndpointDown(
                f"shard {self.shard}: {self.breaker.reason}. Committed work is kept; "
                "these rollouts are sampled again when the shard resumes"
            )
        if not completed:
            raise ShardInterrupted(f"shard {self.shard} stopped; committed work is kept")
        await asyncio.to_thread(self._finish)
        self.stats.finished = True
        self._report()
        return self.stats

    async def _run_until_done_or_stopped(self) -> bool:
        """Work and commit until every slot is done (True) or the shard is stopped (False)."""
        work = asyncio.create_task(self._work())
        timer = asyncio.create_task(self.committer.run_timer())
        stoppers = [asyncio.create_task(event.wait()) for event in (self._stop, self._halt)]
        try:
            await asyncio.wait([work, timer, *stoppers], return_when=asyncio.FIRST_COMPLETED)
            if timer.done():
                timer.result()
            if work.done():
                work.result()
                return True
            await self._drain()
            return False
        finally:
            for task in (work, timer, *stoppers, *self._rollouts):
                task.cancel()
            await asyncio.gather(work, timer, *stoppers, *self._rollouts, return_exceptions=True)

    def _load_manifest(self) -> ShardManifest:
        """The committed manifest (retryable failures requeued unless the job succeeded)."""
        manifest = read_manifest(self.storage, self.prefix, self.shard)
        if manifest is None:
            return ShardManifest(
                shard=self.shard,
                num_shards=self.num_shards,
                job_digest=self.digest,
                num_repeats=self.repeats,
            )
        if read_success(self.storage, self.prefix) is not None:
            return manifest
        max_runs = self.spec.retry.max_rollout_runs
        return requeue.requeue_failures(self.storage, self.prefix, manifest, max_runs, self.slot)

    def _count_lines(self) -> list[int]:
        """Non-empty input lines per shard (bytes only): each shard's tasks, good or bad."""
        return count_shard_lines(
            self.storage,
            parse_uri(self.spec.input.uri),
            num_shards=self.num_shards,
            limit=self.spec.input.limit,
        )

    async def _work(self) -> None:
        """Produce every missing slot's rollout; fail at once when a rollout fails unexpectedly."""
        produce = asyncio.create_task(self._produce())
        crashed = asyncio.create_task(self._crashed.wait())
        try:
            await asyncio.wait([produce, crashed], return_when=asyncio.FIRST_COMPLETED)
            if self._crash is not None:
                raise self._crash
            produce.result()
        finally:
            for task in (produce, crashed):
                task.cancel()
            await asyncio.gather(produce, crashed, return_exceptions=True)

    async def _produce(self) -> None:
        source = iter_shard(
            self.storage,
            parse_uri(self.spec.input.uri),
            shard=self.shard,
            num_shards=self.num_shards,
            limit=self.spec.input.limit,
            max_row_bytes=self.spec.input.max_row_bytes,
        )
        done = self.committer.done
        while batch := await asyncio.to_thread(_take, source, READ_BATCH):
            for item in batch:
                if isinstance(item, BadRow):
                    self._record_bad_row(item)
                    continue
                self.stats.valid_tasks += 1
                for repeat in range(self.repeats):
                    if self.slot(item.index, repeat) not in done:
                        if len(self.committer) >= 4 * self.spec.output.part_rows:
                            await self.committer.commit()  # slow storage slows sampling down
                        await self._sampling.enter()
                        if self._draining:
                            self._sampling.leave()
                            return
                        self._start(item, repeat)
        await self._idle.wait()

    def _start(self, task: Task, repeat: int) -> None:
        """Run one rollout (its sampling place taken) as a task of its own."""
        rollout = asyncio.create_task(self._rollout(task, repeat))
        self._rollouts.add(rollout)
        self._idle.clear()
        rollout.add_done_callback(self._ended)

    def _ended(self, rollout: asyncio.Task[None]) -> None:
        self._rollouts.discard(rollout)
        if not self._rollouts:
            self._idle.set()
        if not rollout.cancelled() and rollout.exception() is not None and self._crash is None:
            self._crash = rollout.exception()
            self._crashed.set()

    async def _rollout(self, task: Task, repeat: int) -> None:
        """Model side, then (the model's window and the sampling place left) verifier side."""
        try:
            first = await self.sampler.answer(task, repeat)
            if isinstance(first, Answer):
                await self._verifying.enter()  # still on the model side until there is room
        finally:
            self._sampling.leave()
        outcome: Outcome | None = first
        if isinstance(first, Answer):
            try:
                outcome = await self.sampler.score(first)
            finally:
                self._verifying.leave()
        if outcome is not None:
            self._record(outcome)
        if len(self.committer) >= self.spec.output.part_rows:
            self.committer.request_flush()

    async def _drain(self) -> None:
        """On stop: take no new slots, give the rollouts in progress `drain_seconds` to end."""
        self._draining = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.drain_seconds):
                await self._idle.wait()
        log.info(
            "shard %d stopping; %d rollouts still in progress are dropped",
            self.shard,
            len(self._rollouts),
        )

    def _record(self, outcome: Outcome) -> None:
        if isinstance(outcome, Failed):
            self._fail(outcome)
            return
        assert isinstance(outcome, Rollout)
        self._record_failures(self.breaker.answered())
        slot = self.slot(outcome.task.index, outcome.repeat)
        self.committer.add_rollout(slot, outcome.row, outcome.passed, outcome.truncated)
        (metrics.ROLLOUTS_TRUNCATED if outcome.truncated else metrics.ROLLOUTS_COMPLETED).inc()
        metrics.REWARDS.observe(outcome.row["reward"])
        self._report()

    def _fail(self, failed: Failed) -> None:
        """A rollout failed for good; held by the breaker when its endpoint is to blame."""
        log.warning(
            "task %d repeat %d failed: %s after %s attempts: %s",
            failed.task.index,
            failed.repeat,
            failed.failure["class"],
            failed.failure.get("attempts"),
            failed.message[:200],
        )
        held = HeldFailure(failed.task.index, failed.repeat, failed.failure, failed.message)
        if not is_endpoint_failure(failed.failure):
            self._record_failures([*self.breaker.answered(), held])
        elif self.breaker.hold(held):
            log.error("shard %d stops: %s", self.shard, self.breaker.reason)
            self._halt.set()

    def _record_failures(self, held: list[HeldFailure]) -> None:
        for failure in held:
            identity = (failure.task_index, failure.repeat)
            self.committer.add_failure(self.slot(*identity), identity, failure.failure)
            metrics.ROLLOUTS_FAILED.inc()
        if held:
            self._report()

    def _record_bad_row(self, bad: BadRow) -> None:
        first = self.slot(bad.index, 0)
        if first in self.committer.done:
            return
        self.committer.add_bad_row(first, self.repeats, bad.as_row())
        metrics.ROLLOUTS_INPUT_ERROR.inc()
        log.warning("input line %d: %s", bad.index + 1, bad.reason)

    def _report(self) -> None:
        self.stats.concurrency_limit = int(self.window.limit)
        if self.on_progress is not None:
            self.on_progress(self.stats)

    def _finish(self) -> None:
        self.committer.finish(self.stats.valid_tasks * self.repeats)
        self._write_success_if_complete()

    def _write_success_if_complete(self) -> None:
        write_success_if_complete(
            self.storage, self.prefix, self.spec.failure_policy, self.num_shards, self.digest
        )


def _take(source: Iterator[Task | BadRow], count: int) -> list[Task | BadRow]:
    return list(itertools.islice(source, count))

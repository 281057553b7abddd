"""One shard of a RolloutJob: sample, verify, reward and commit every (task, repeat) exactly once.

Sliding window, not batches: a reader streams the shard's tasks into a bounded queue of
(task, repeat) slots; a pool of worker coroutines takes them one at a time, so memory does not
grow with tasks x repeats. Model requests in flight are gated by the AIMD window. Finished rows
collect in a part buffer committed every `output.partRows` rows or `output.partSeconds` (encoding
and upload run in a thread). A slot is done once its part is in the manifest; on restart the
manifest's done set is skipped. The slot of (task, repeat) is `(task_index // N) * R + repeat`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gym_operator import errors, metrics
from gym_operator.api.rolloutjob import RolloutJobSpec
from gym_operator.protocol import failures
from gym_operator.protocol import rows as protocol_rows
from gym_operator.protocol.failures import FailureClass
from gym_operator.protocol.response import is_truncated
from gym_operator.protocol.verify import Masked, Verdict
from gym_operator.rollout import failure_policy, parts, requeue, tool_loop
from gym_operator.rollout.agent_client import AgentClient
from gym_operator.rollout.breaker import (
    EndpointBreaker,
    EndpointDown,
    HeldFailure,
    is_endpoint_failure,
)
from gym_operator.rollout.client import ModelClient, merge_params
from gym_operator.rollout.retry import (
    HTTP_429,
    RequestError,
    RetriesExhausted,
    RetryPolicy,
    call_with_retry,
)
from gym_operator.rollout.reward import make_reward_fn
from gym_operator.rollout.tasks import BadRow, Task, count_shard_lines, iter_shard
from gym_operator.rollout.verifier_client import VerifierClient
from gym_operator.rollout.window import AimdWindow
from gym_operator.storage import layout
from gym_operator.storage.manifest import (
    PartEntry,
    ShardManifest,
    commit_part,
    read_all_manifests,
    read_manifest,
    read_success,
    write_manifest,
    write_success,
)
from gym_operator.storage.slots import SlotSet
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI, parse_uri

log = logging.getLogger(__name__)
READ_BATCH = 256
DRAIN_SECONDS = 20.0
"""On SIGTERM, how long rollouts in progress may take to finish (Kubernetes grants 30 s)."""


class _Dropped(Exception):
    """A model request not started because the shard is stopping (its slot stays undone)."""


class ShardInterrupted(errors.Interrupted):
    """The shard stopped on request (SIGTERM); what was done is committed, the rest resumes."""


@dataclass
class ShardStats:
    """Live counts of one shard (committed and still buffered), for progress reporting."""

    shard: int
    completed: int = 0
    failed: int = 0
    input_errors: int = 0
    truncated: int = 0
    passed: int = 0
    reward_sum: float = 0.0
    resumed: int = 0
    """Slots already committed when this run started (rollouts, failures, bad rows x repeats)."""
    valid_tasks: int = 0
    failures_by_class: Counter[str] = field(default_factory=Counter)
    finished: bool = False
    concurrency_limit: int = 0
    """Model requests this shard may have in flight now (fixed, cut on 429s, or auto)."""

    @property
    def done(self) -> int:
        """Rollouts with a final outcome (reward or failure)."""
        return self.completed + self.failed


@dataclass
class PartBuffer:
    """Rows waiting for the next commit, and what they add to the manifest."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    slots: SlotSet = field(default_factory=SlotSet)
    truncated: int = 0
    passed: int = 0
    reward_sum: float = 0.0

    def __len__(self) -> int:
        return len(self.rows) + len(self.failures) + len(self.errors)


@dataclass(frozen=True)
class Clients:
    """The model and verifier clients a shard uses (shared across shards of one process)."""

    model: ModelClient
    verifier: VerifierClient
    agent: AgentClient | None = None


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
    ) -> None:
        self.spec = spec
        self.storage = storage
        self.prefix = prefix
        self.shard = shard
        self.num_shards = num_shards
        self.digest = digest
        self.clients = clients
        self.window = window
        self.on_progress = on_progress
        self.repeats = spec.sampling.num_repeats
        self.stats = ShardStats(shard)
        self.reward_fn = make_reward_fn(spec.reward)
        self.overrides = spec.sampling.params.model_dump(exclude_none=True)
        retry = spec.retry
        self.model_policy = RetryPolicy(
            max_attempts=retry.max_attempts,
            timeout=retry.request_timeout_seconds,
            budget=retry.max_retry_seconds,
            backoff_base=retry.backoff_base_seconds,
            backoff_max=retry.backoff_max_seconds,
        )
        ver = spec.verifier
        self.verify_policy = RetryPolicy(
            max_attempts=ver.max_attempts,
            timeout=ver.timeout_seconds,
            budget=ver.timeout_seconds * ver.max_attempts + 60,
            backoff_base=0.5,
            backoff_max=10,
        )
        self.suffix = parts.part_suffix(spec.output.format, spec.output.compression)
        self.breaker = EndpointBreaker(retry.endpoint_failure_limit)
        self._buffer = PartBuffer()
        self._commit_lock = asyncio.Lock()
        self._flush = asyncio.Event()
        self._stop = stop or asyncio.Event()
        self._halt = asyncio.Event()
        """Set by the breaker: this shard stops, other shards sharing `stop` go on."""
        self.drain_seconds = drain_seconds
        self._draining = False
        self._active = 0
        self._idle = asyncio.Event()
        self._manifest: ShardManifest | None = None
        self._done = SlotSet()
        self._line_counts = line_counts
        """Non-empty input lines per shard (counted once per process, see runner)."""
        self._lines: int | None = None

    def request_stop(self) -> None:
        """Stop taking new work, let work in progress end (drain_seconds), commit (SIGTERM)."""
        self._stop.set()

    def slot(self, task_index: int, repeat: int) -> int:
        """The shard-local slot of (task, repeat)."""
        return (task_index // self.num_shards) * self.repeats + repeat

    async def run(self) -> ShardStats:
        """Do every missing slot, commit, mark the shard finished; returns its stats."""
        manifest = await asyncio.to_thread(read_manifest, self.storage, self.prefix, self.shard)
        if manifest is None:
            manifest = ShardManifest(
                shard=self.shard,
                num_shards=self.num_shards,
                job_digest=self.digest,
                num_repeats=self.repeats,
            )
        elif await asyncio.to_thread(read_success, self.storage, self.prefix) is None:
            manifest = await asyncio.to_thread(self._requeue, manifest)
        self._manifest = manifest
        self._done = manifest.done_slots()
        self._load_stats(manifest)
        if manifest.finished:
            self.stats.finished = True
            await asyncio.to_thread(self._write_success_if_complete)
            return self.stats
        if self._line_counts is None:
            self._line_counts = asyncio.ensure_future(asyncio.to_thread(self._count_lines))
        concurrency = self.window.ceiling
        queue: asyncio.Queue[tuple[Task, int] | None] = asyncio.Queue(maxsize=concurrency * 2)
        work = asyncio.create_task(self._work(queue, workers=concurrency * 2))
        committer = asyncio.create_task(self._committer())
        stoppers = [asyncio.create_task(event.wait()) for event in (self._stop, self._halt)]
        completed = False
        try:
            await asyncio.wait([work, committer, *stoppers], return_when=asyncio.FIRST_COMPLETED)
            if committer.done():
                committer.result()
            if work.done():
                work.result()
                completed = True
            elif self._stop.is_set() or self._halt.is_set():
                await self._drain()
        finally:
            for task in (work, committer, *stoppers):
                task.cancel()
            await asyncio.gather(work, committer, *stoppers, return_exceptions=True)
        if completed and self.breaker.held and self.breaker.limit and not self.breaker.answered:
            # Nothing ever answered: the endpoint may be down still (on a cluster, a verifier
            # Service whose pods are not ready yet), so they are sampled again.
            self.breaker.trip()
            completed = False
        elif completed:
            self._release_held()
        await self._commit()
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

    def _requeue(self, manifest: ShardManifest) -> ShardManifest:
        """Retryable failure rows of a job that has not succeeded are sampled again."""
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

    def _load_stats(self, manifest: ShardManifest) -> None:
        s = self.stats
        s.completed, s.failed = manifest.completed, manifest.failed
        s.input_errors, s.truncated = manifest.input_errors, manifest.truncated
        s.passed, s.reward_sum = manifest.passed, manifest.reward_sum
        s.resumed = manifest.completed + manifest.failed + manifest.input_errors * self.repeats

    async def _work(self, queue: asyncio.Queue[tuple[Task, int] | None], workers: int) -> None:
        pool = [asyncio.create_task(self._worker(queue)) for _ in range(workers)]
        producer = asyncio.create_task(self._produce(queue, workers))
        try:
            # A worker that dies fails the shard; it must not leave the producer blocked on a
            # full queue forever.
            done, _ = await asyncio.wait([producer, *pool], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
            await asyncio.gather(producer, *pool)
        finally:
            for task in (producer, *pool):
                task.cancel()
            await asyncio.gather(producer, *pool, return_exceptions=True)

    async def _produce(self, queue: asyncio.Queue[tuple[Task, int] | None], workers: int) -> None:
        source = iter_shard(
            self.storage,
            parse_uri(self.spec.input.uri),
            shard=self.shard,
            num_shards=self.num_shards,
            limit=self.spec.input.limit,
            max_row_bytes=self.spec.input.max_row_bytes,
        )
        while batch := await asyncio.to_thread(_take, source, READ_BATCH):
            for item in batch:
                if isinstance(item, BadRow):
                    self._record_bad_row(item)
                    continue
                self.stats.valid_tasks += 1
                for repeat in range(self.repeats):
                    if self.slot(item.index, repeat) not in self._done:
                        await queue.put((item, repeat))
        for _ in range(workers):
            await queue.put(None)

    def _record_bad_row(self, bad: BadRow) -> None:
        first = self.slot(bad.index, 0)
        if first in self._done:
            return
        self._buffer.errors.append(bad.as_row())
        self._buffer.slots.add_range(first, first + self.repeats)
        self.stats.input_errors += 1
        metrics.ROLLOUTS_INPUT_ERROR.inc()
        log.warning("input line %d: %s", bad.index + 1, bad.reason)

    async def _drain(self) -> None:
        """On stop: take no new slots, give the rollouts in progress `drain_seconds` to end."""
        self._draining = True
        if self._active:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.drain_seconds):
                    await self._idle.wait()
        log.info(
            "shard %d stopping; %d rollouts still in progress are dropped", self.shard, self._active
        )

    async def _worker(self, queue: asyncio.Queue[tuple[Task, int] | None]) -> None:
        part_rows = self.spec.output.part_rows
        while (item := await queue.get()) is not None and not self._draining:
            task, repeat = item
            self._active += 1
            try:
                await self._rollout(task, repeat)
            finally:
                self._active -= 1
                if self._draining and not self._active:
                    self._idle.set()
            size = len(self._buffer)
            if size >= part_rows:
                self._flush.set()
            if size >= 4 * part_rows:
                await self._commit()

    async def _rollout(self, task: Task, repeat: int) -> None:
        if self.clients.agent is not None:
            await self._agent_rollout(task, repeat)
            return
        params = merge_params(task.row["responses_create_params"], self.overrides)
        if self.spec.sampling.seed_per_repeat:
            params["seed"] = repeat
        session: dict[str, str] | None = None
        try:
            if params.get("tools"):
                loop = await tool_loop.run_tool_loop(
                    self._sample,
                    self.clients.verifier.session,
                    self.clients.verifier.base_url,
                    task.row,
                    params,
                    self.spec.sampling.max_turns,
                    tool_timeout=self.spec.verifier.timeout_seconds,
                    limits=tool_loop.ToolLimits(
                        self.spec.sampling.max_tool_calls_per_turn,
                        self.spec.sampling.max_tool_calls,
                    ),
                )
                response, session = loop.response, loop.session_headers
            else:
                response = await self._sample(params)
        except RetriesExhausted as exc:
            self._fail(task, repeat, exc.failure(), exc.last.message)
            return
        except _Dropped:
            return
        except tool_loop.ToolLoopError as exc:
            failure = protocol_rows.failure(FailureClass.VERIFIER_TOOL, str(exc), 1)
            self._fail(task, repeat, failure, str(exc))
            return
        # Let the worker that just got our window slot send its model request before we spend
        # CPU on verification: keeps the model's window full when answers arrive in bursts.
        await asyncio.sleep(0)
        try:
            verdict = (
                await call_with_retry(
                    lambda timeout: self._verify_attempt(task.row, response, timeout, session),
                    self.verify_policy,
                    on_retry=lambda e: metrics.RETRIES.labels("verifier", e.error_class).inc(),
                )
            ).value
        except RetriesExhausted as exc:
            failure = exc.failure(verifying=True)
            self._fail(task, repeat, failure, exc.last.message)
            return
        self._record_verdict(task, repeat, response, verdict)

    def _record_verdict(
        self, task: Task, repeat: int, response: dict[str, Any], verdict: Verdict | Masked
    ) -> None:
        """A real score becomes a rollout row; a masked one (judge down, ...) a failure row."""
        if isinstance(verdict, Masked):
            failure = protocol_rows.failure(
                failures.masked(verdict.kind), verdict.reason, 1, masked=True
            )
            self._fail(task, repeat, failure, verdict.reason)
            return
        reward, components = self.reward_fn(verdict.score, verdict.components, response)
        self._record_rollout(task, repeat, response, reward, components, verdict.extras)

    async def _agent_rollout(self, task: Task, repeat: int) -> None:
        """Agent mode: the agent samples and verifies; this shard retries, records, commits."""
        params = merge_params(task.row["responses_create_params"], self.overrides)
        try:
            outcome = await call_with_retry(
                lambda timeout: self._agent_attempt(task.row, params, timeout),
                self.model_policy,
                on_retry=lambda e: metrics.RETRIES.labels("model", e.error_class).inc(),
            )
        except RetriesExhausted as exc:
            self._fail(task, repeat, exc.failure(), exc.last.message)
            return
        except _Dropped:
            return
        response, verdict = outcome.value
        self._record_verdict(task, repeat, response, verdict)

    async def _agent_attempt(
        self, row: dict[str, Any], params: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], Verdict | Masked]:
        assert self.clients.agent is not None
        await self.window.acquire()
        if self._draining:
            self.window.release()
            raise _Dropped
        try:
            result = await self.clients.agent.run(row, params, timeout)
        finally:
            self.window.release()
        self.window.on_success()
        return result

    async def _sample(self, params: dict[str, Any]) -> dict[str, Any]:
        """One model call with retries (RetriesExhausted when it fails for good)."""
        body = self.clients.model.request_body(params)
        outcome = await call_with_retry(
            lambda timeout: self._model_attempt(body, timeout),
            self.model_policy,
            on_retry=lambda e: metrics.RETRIES.labels("model", e.error_class).inc(),
        )
        return outcome.value

    async def _model_attempt(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        await self.window.acquire()
        if self._draining:
            self.window.release()
            raise _Dropped
        started = time.perf_counter()
        try:
            response = await self.clients.model.create(body, timeout)
        except RequestError as exc:
            if exc.error_class == HTTP_429:
                self.window.on_throttle(exc.retry_after)
            raise
        finally:
            latency = time.perf_counter() - started
            metrics.MODEL_LATENCY.observe(latency)
            self.window.release()
        usage = response.get("usage") or {}
        self.window.on_success(latency, usage.get("output_tokens"))
        metrics.PROMPT_TOKENS.inc(usage.get("input_tokens") or 0)
        metrics.COMPLETION_TOKENS.inc(usage.get("output_tokens") or 0)
        return response

    async def _verify_attempt(
        self,
        row: dict[str, Any],
        response: dict[str, Any],
        timeout: float,
        session: dict[str, str] | None,
    ) -> Verdict | Masked:
        started = time.perf_counter()
        try:
            return await self.clients.verifier.verify(row, response, timeout, session)
        finally:
            metrics.VERIFIER_LATENCY.observe(time.perf_counter() - started)

    def _record_rollout(
        self,
        task: Task,
        repeat: int,
        response: dict[str, Any],
        reward: float,
        components: dict[str, float] | None,
        extras: dict[str, Any],
    ) -> None:
        identity = (task.index, repeat)
        row = protocol_rows.rollout_row(task.row, identity, response, reward, components, extras)
        self._release_held()
        buf = self._buffer
        buf.rows.append(row)
        buf.slots.add(self.slot(task.index, repeat))
        buf.reward_sum += reward
        passed = reward >= self.spec.reward.pass_threshold
        truncated = is_truncated(response)
        buf.passed += passed
        buf.truncated += truncated
        s = self.stats
        s.completed += 1
        s.reward_sum += reward
        s.passed += passed
        s.truncated += truncated
        (metrics.ROLLOUTS_TRUNCATED if truncated else metrics.ROLLOUTS_COMPLETED).inc()
        metrics.REWARDS.observe(reward)
        self._report()

    def _fail(self, task: Task, repeat: int, failure: dict[str, Any], message: str) -> None:
        """A rollout failed for good; held by the breaker when its endpoint is to blame."""
        log.warning(
            "task %d repeat %d failed: %s after %s attempts: %s",
            task.index,
            repeat,
            failure["class"],
            failure.get("attempts"),
            message[:200],
        )
        held = HeldFailure(task.index, repeat, failure, message)
        if not is_endpoint_failure(failure):
            self._release_held()
            self._record_failure(held)
        elif self.breaker.hold(held):
            log.error("shard %d stops: %s", self.shard, self.breaker.reason)
            self._halt.set()

    def _release_held(self) -> None:
        """The endpoint answered: failures held by the breaker become failure rows."""
        self.breaker.answered = True
        if not self.breaker.held:  # the usual case, once per rollout: no list swap
            return
        for held in self.breaker.release():
            self._record_failure(held)

    def _record_failure(self, held: HeldFailure) -> None:
        identity = (held.task_index, held.repeat)
        slot = self.slot(held.task_index, held.repeat)
        runs = self._manifest.runs.get(slot, 0) + 1 if self._manifest else 1
        failure = {**held.failure, "runs": runs}
        self._buffer.failures.append(protocol_rows.failure_row(identity, failure))
        self._buffer.slots.add(self.slot(held.task_index, held.repeat))
        self.stats.failed += 1
        self.stats.failures_by_class[str(held.failure["class"])] += 1
        metrics.ROLLOUTS_FAILED.inc()
        self._report()

    def _report(self) -> None:
        self.stats.concurrency_limit = int(self.window.limit)
        if self.on_progress is not None:
            self.on_progress(self.stats)

    async def _committer(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that lands
        # as the event is set, and this loop would then wait a whole partSeconds more.
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.spec.output.part_seconds):
                    await self._flush.wait()
            self._flush.clear()
            await self._commit()

    async def _commit(self) -> None:
        async with self._commit_lock:
            if self._lines is None and self._line_counts is not None:
                self._lines = (await asyncio.shield(self._line_counts))[self.shard]
            buf, self._buffer = self._buffer, PartBuffer()
            if not len(buf):
                return
            upload = asyncio.ensure_future(asyncio.to_thread(self._commit_sync, buf))
            try:
                await asyncio.shield(upload)
            except asyncio.CancelledError:
                # The thread goes on regardless: hold the lock until it is done, so no other
                # commit starts from the manifest it is about to replace.
                await asyncio.wait([upload])
                raise
            metrics.PARTS_COMMITTED.inc()

    def _commit_sync(self, buf: PartBuffer) -> None:
        assert self._manifest is not None
        seq = self._manifest.next_seq()
        files: dict[str, bytes] = {}
        entry = PartEntry(
            seq=seq, rollouts=len(buf.rows), failures=len(buf.failures), errors=len(buf.errors)
        )
        if buf.rows:
            entry.rollouts_file = layout.part_name(seq, self.suffix)
            files[entry.rollouts_file] = parts.encode_part(
                buf.rows, self.spec.output.format, self.spec.output.compression
            )
        if buf.failures:
            entry.failures_file = layout.failures_name(seq)
            files[entry.failures_file] = parts.encode_jsonl(buf.failures)
        if buf.errors:
            entry.errors_file = layout.errors_name(seq)
            files[entry.errors_file] = parts.encode_jsonl(buf.errors)
        committed = commit_part(self.storage, self.prefix, self._manifest, files, entry, buf.slots)
        committed.completed += len(buf.rows)
        committed.failed += len(buf.failures)
        for row in buf.failures:
            name = str(row["failure"]["class"])
            committed.failure_classes[name] = committed.failure_classes.get(name, 0) + 1
            committed.failure_examples.setdefault(name, str(row["failure"].get("message", "")))
        committed.input_errors += len(buf.errors)
        committed.truncated += buf.truncated
        committed.passed += buf.passed
        committed.reward_sum += buf.reward_sum
        if self._lines is not None:
            # Bad rows are tasks whose slots end as input errors, not rollouts.
            committed.expected_rollouts = (self._lines - committed.input_errors) * self.repeats
        write_manifest(self.storage, self.prefix, committed)
        self._manifest = committed
        log.debug("shard %d committed part %d (%d rows)", self.shard, seq, len(buf))

    def _finish(self) -> None:
        assert self._manifest is not None
        manifest = self._manifest.model_copy(deep=True)
        manifest.finished = True
        manifest.expected_rollouts = self.stats.valid_tasks * self.repeats
        write_manifest(self.storage, self.prefix, manifest)
        self._manifest = manifest
        self._write_success_if_complete()

    def _write_success_if_complete(self) -> None:
        manifests = read_all_manifests(self.storage, self.prefix)
        complete = len(manifests) == self.num_shards and all(
            m.finished and m.job_digest == self.digest for m in manifests
        )
        if not complete:
            return
        failed = failure_policy.verdict(self.spec.failure_policy, manifests, self.num_shards)
        if failed:
            log.error("all %d shards finished, but the job failed: %s", self.num_shards, failed)
            return
        write_success(self.storage, self.prefix, manifests)
        log.info("all %d shards finished; wrote %s", self.num_shards, layout.SUCCESS)


def _take(source: Iterator[Task | BadRow], count: int) -> list[Task | BadRow]:
    return list(itertools.islice(source, count))

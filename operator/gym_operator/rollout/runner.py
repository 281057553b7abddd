"""Running shards of a RolloutJob in this process: claim the prefix, open clients, run the shards.

Shared by the pod entrypoint (`gymops generate`, one shard) and local mode (`gymops run`, all
shards side by side, each with its own concurrency window, as their pods would run). A built-in
verifier without a URL is called in this process when its check is cheap, else run by a child
process with a clean environment, its checks sent over pipes (rollout.local_verifier).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from gym_operator import errors, metrics, redaction
from gym_operator.api.rolloutjob import RetrySpec, RolloutJobSpec
from gym_operator.rollout import concurrency, failure_policy, local_verifier
from gym_operator.rollout.agent_client import AgentClient
from gym_operator.rollout.breaker import EndpointDown
from gym_operator.rollout.client import ModelClient, load_api_key, make_session
from gym_operator.rollout.generator import (
    VERIFYING_PER_SLOT,
    Clients,
    ShardGenerator,
    ShardInterrupted,
    ShardStats,
)
from gym_operator.rollout.job import check_prefix, claim_prefix
from gym_operator.rollout.preflight import PreflightFailed, first_task, run_preflight
from gym_operator.rollout.tasks import count_shard_lines
from gym_operator.rollout.verifier_client import VerifierClient
from gym_operator.rollout.window import AimdWindow
from gym_operator.storage.manifest import read_all_manifests, read_success
from gym_operator.storage.store import S3Settings, Storage
from gym_operator.storage.uri import StorageURI, parse_uri

log = logging.getLogger(__name__)
VERIFIER_PROBE_SECONDS = 5.0
"""How long one readiness probe of the verifier may take."""


@dataclass
class JobResult:
    """What a run did: per-shard stats and whether the whole job is now complete."""

    output_uri: str
    digest: str
    shards: list[ShardStats] = field(default_factory=list)
    success: bool = False
    failed_reason: str | None = None
    """Set when every shard finished but the job failed by spec.failurePolicy."""


@dataclass(frozen=True)
class Endpoint:
    """Where to sample from (the spec's policy, or an embedded model's loopback server)."""

    base_url: str | list[str]
    """One URL, or several replicas of the model."""
    model: str


def parse_shard(text: str) -> tuple[int, int]:
    """`i/N` -> (i, N), with 0 <= i < N."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected i/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text!r}: need 0 <= i < N")
    return index, count


def window_ceiling(spec: RolloutJobSpec) -> int:
    """Requests in flight per shard: sampling.concurrency, capped by policy.maxConcurrency / N."""
    ceiling = concurrency.base_ceiling(spec.sampling.concurrency)
    if spec.policy.max_concurrency:
        ceiling = min(ceiling, max(1, math.ceil(spec.policy.max_concurrency / spec.parallelism)))
    return ceiling


@contextlib.asynccontextmanager
async def open_verifier(
    spec: RolloutJobSpec, url: str | None, session: aiohttp.ClientSession
) -> AsyncIterator[VerifierClient]:
    """The verifier: a server at the given URL or the spec's, a cheap built-in called in this
    process, or another built-in run by a child process started here."""
    url = url or spec.verifier.url
    if url:
        yield VerifierClient(session, url)
        return
    builtin = spec.verifier.builtin
    if builtin is None:
        raise errors.BadSpec(
            "verifier.image needs --verifier-url (the operator passes its Service)"
        )
    async with local_verifier.open_builtin(
        builtin, spec.verifier.config, spec.verifier.timeout_seconds, session
    ) as verifier:
        yield verifier


def shard_windows(ceiling: int, count: int, spec: RolloutJobSpec) -> list[AimdWindow]:
    """One AIMD window per shard; the metrics show their sums (one shard in a pod)."""
    windows: list[AimdWindow] = []

    def publish(_: float) -> None:
        metrics.WINDOW.set(sum(w.limit for w in windows))

    auto, timeout = spec.sampling.concurrency == "auto", spec.retry.request_timeout_seconds
    windows.extend(
        concurrency.make_window(ceiling, auto, request_timeout=timeout, on_change=publish)
        for _ in range(count)
    )
    publish(ceiling)
    metrics.IN_FLIGHT.set_function(lambda: sum(w.in_flight for w in windows))
    return windows


async def run_side_by_side(shards: list[Awaitable[None]]) -> None:
    """Run every shard to its end, as their pods would; then raise the gravest error, if any:
    an unexpected one, then a down endpoint, then a stop."""
    outcomes = await asyncio.gather(*shards, return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        raise min(errors, key=_gravity)


async def run_through_outages(
    make_generator: Callable[[], ShardGenerator],
    retry: RetrySpec,
    stop: asyncio.Event | None,
) -> None:
    """Run one shard to its end. When its endpoint is down (EndpointDown), wait and resume it
    from its manifest, with a doubling backoff, for up to `retry.endpointWaitSeconds` after the
    first stop; then give up with the last EndpointDown (the pod exits 5 and the Job retries)."""
    deadline: float | None = None
    for attempt in itertools.count():
        try:
            await make_generator().run()
            return
        except EndpointDown as down:
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + retry.endpoint_wait_seconds
            delay = min(retry.backoff_max_seconds, retry.backoff_base_seconds * 2**attempt)
            if now + delay > deadline:
                raise
            log.warning("%s; trying again in %.1f s", down, delay)
            if await _stopped_within(stop, delay):
                raise ShardInterrupted("stopped while waiting for the endpoint") from down


async def wait_for_endpoints(
    attempt: Callable[[], Awaitable[Exception | None]],
    seconds: float,
    retry: RetrySpec,
    stop: asyncio.Event | None,
) -> Exception | None:
    """Call `attempt` until it succeeds (returns None) or `seconds` have passed; it returns the
    error of an endpoint that does not answer yet, and raises what no wait can cure. Between
    attempts a doubling backoff; returns the last error when time is up."""
    deadline = time.monotonic() + seconds
    for count in itertools.count():
        error = await attempt()
        if error is None:
            return None
        delay = min(retry.backoff_max_seconds, retry.backoff_base_seconds * 2**count)
        if time.monotonic() + delay > deadline:
            return error
        log.warning("%s; trying again in %.1f s", error, delay)
        if await _stopped_within(stop, delay):
            raise ShardInterrupted("stopped while waiting for the endpoints") from error
    raise AssertionError("unreachable")


async def wait_for_verifier(
    session: aiohttp.ClientSession, url: str, retry: RetrySpec, stop: asyncio.Event | None
) -> None:
    """Wait until the verifier answers at all (any HTTP status), for up to
    `retry.endpointWaitSeconds`. On a cluster the generator pods start beside the verifier
    Deployment's; sampling before its pods are ready would fail rollouts on a server that is
    only starting. Past the wait, sampling starts and the endpoint breaker takes over."""

    async def probe() -> Exception | None:
        try:
            async with asyncio.timeout(VERIFIER_PROBE_SECONDS), session.get(url) as answer:
                await answer.read()
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            return ConnectionError(f"verifier {url} not answering yet ({exc!r})")
        return None

    await wait_for_endpoints(probe, retry.endpoint_wait_seconds, retry, stop)


async def _stopped_within(stop: asyncio.Event | None, seconds: float) -> bool:
    """Wait `seconds`; True at once if `stop` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


def _gravity(error: BaseException) -> int:
    if isinstance(error, ShardInterrupted):
        return 2
    return 1 if isinstance(error, EndpointDown) else 0


def register_secrets(spec: RolloutJobSpec, api_key: str | None) -> None:
    """Redact this job's secrets from every row, file and log record the process writes."""
    redaction.register(api_key)
    redaction.register_env(redaction.SECRET_ENV_VARS)
    for url in spec.policy.urls():
        redaction.register_url(url)
    redaction.register_url(spec.verifier.url)
    redaction.install_log_redaction()


async def run_job(
    spec: RolloutJobSpec,
    *,
    shards: list[int],
    restart: bool = False,
    verifier_url: str | None = None,
    endpoint: Endpoint | None = None,
    on_progress: Callable[[ShardStats], None] | None = None,
    stop: asyncio.Event | None = None,
    storage: Storage | None = None,
    on_total: Callable[[int], None] | None = None,
    preflight: bool = False,
    preflight_wait: float = 0.0,
) -> JobResult:
    """Run the given shards (of spec.parallelism) side by side; ShardInterrupted on stop.

    The input's lines are counted once (bytes only) beside the first shard's work, so every
    manifest carries `expected_rollouts` from its first commit; `on_total` gets the slots of the
    shards run here (tasks x repeats, bad rows included) when the count is done. With
    `preflight`, one trial rollout must succeed before the prefix is claimed (PreflightFailed);
    an endpoint that does not answer is tried again for up to `preflight_wait` seconds.
    """
    storage = storage or Storage(S3Settings.from_spec(spec.s3))
    prefix = parse_uri(spec.output.uri)
    if endpoint is None:
        assert spec.policy.urls() and spec.policy.model
        endpoint = Endpoint(spec.policy.urls(), spec.policy.model)
    claim = await asyncio.to_thread(check_prefix, storage, prefix, spec, restart=restart)
    ceiling = window_ceiling(spec)
    api_key = load_api_key(spec.policy.api_key_env)
    register_secrets(spec, api_key)
    async with (
        make_session(ceiling * len(shards)) as model_session,
        make_session(ceiling * len(shards) * VERIFYING_PER_SLOT) as verify_session,
        open_verifier(spec, verifier_url, verify_session) as verifier,
    ):
        clients = Clients(
            model=ModelClient(
                model_session,
                endpoint.base_url,
                endpoint.model,
                spec.policy.api,
                api_key,
                max_answer_bytes=spec.policy.max_answer_bytes,
            ),
            verifier=verifier,
            agent=AgentClient(model_session, spec.agent.url) if spec.agent else None,
        )
        overlap = preflight and claim.fresh
        if not overlap:
            await _before_claim(spec, storage, prefix, clients, preflight, preflight_wait, stop)
            await asyncio.to_thread(claim_prefix, storage, prefix, spec, claim)
        result = JobResult(output_uri=str(prefix), digest=claim.digest)
        claimed = asyncio.Event() if overlap else None
        line_counts = _count_lines(spec, storage, shards, on_total)
        windows = shard_windows(ceiling, len(shards), spec)
        result.shards = [ShardStats(shard=shard) for shard in shards]

        def make_generator(index: int) -> ShardGenerator:
            generator = ShardGenerator(
                spec,
                storage=storage,
                prefix=prefix,
                shard=shards[index],
                num_shards=spec.parallelism,
                digest=claim.digest,
                clients=clients,
                window=windows[index],
                on_progress=on_progress,
                stop=stop,
                line_counts=line_counts,
                claimed=claimed,
            )
            result.shards[index] = generator.stats
            return generator

        running = run_side_by_side(
            [
                run_through_outages(functools.partial(make_generator, i), spec.retry, stop)
                for i in range(len(shards))
            ]
        )
        if claimed is None:
            await running
        else:

            async def preflight_then_claim() -> None:
                await _preflight(spec, storage, prefix, clients, preflight_wait, stop)
                await asyncio.to_thread(claim_prefix, storage, prefix, spec, claim)

            await _sample_while_claiming(running, preflight_then_claim(), claimed)
    result.success = await asyncio.to_thread(read_success, storage, prefix) is not None
    if not result.success:
        manifests = await asyncio.to_thread(read_all_manifests, storage, prefix)
        result.failed_reason = failure_policy.verdict(
            spec.failure_policy, manifests, spec.parallelism
        )
    return result


async def _before_claim(
    spec: RolloutJobSpec,
    storage: Storage,
    prefix: StorageURI,
    clients: Clients,
    preflight: bool,
    preflight_wait: float,
    stop: asyncio.Event | None,
) -> None:
    """The preflight, or (without one) wait until a verifier started elsewhere answers."""
    if preflight:
        await _preflight(spec, storage, prefix, clients, preflight_wait, stop)
    elif not isinstance(clients.verifier, local_verifier.STARTED_HERE):
        await wait_for_verifier(
            clients.verifier.session, clients.verifier.base_url, spec.retry, stop
        )


async def _sample_while_claiming(
    running: Awaitable[None], claiming: Awaitable[None], claimed: asyncio.Event
) -> None:
    """Run the shards beside the preflight (a fresh prefix only): they sample at once, and their
    commits wait for `claimed`, set once the preflight passed and the prefix is claimed. When the
    preflight fails, the shards are cancelled before they wrote anything and its error is raised.
    The preflight's round trip no longer delays the first wave of requests."""
    shards = asyncio.ensure_future(running)
    try:
        await claiming
    except BaseException:
        shards.cancel()
        await asyncio.gather(shards, return_exceptions=True)
        raise
    claimed.set()
    await shards


async def _preflight(
    spec: RolloutJobSpec,
    storage: Storage,
    prefix: StorageURI,
    clients: Clients,
    wait_seconds: float,
    stop: asyncio.Event | None,
) -> None:
    """One trial rollout (see rollout.preflight), skipped when the prefix is already complete;
    while an endpoint does not answer, tried again (wait_for_endpoints) up to `wait_seconds`."""
    if await asyncio.to_thread(read_success, storage, prefix) is not None:
        return
    task = await asyncio.to_thread(first_task, storage, spec)
    if task is None:
        return

    async def attempt() -> Exception | None:
        try:
            score = await run_preflight(spec, task, clients.model, clients.verifier)
        except PreflightFailed as failed:
            if not failed.unavailable:
                raise
            return failed
        log.info("preflight: task %d answered and verified (score %.3f)", task.index, score)
        return None

    error = await wait_for_endpoints(attempt, wait_seconds, spec.retry, stop)
    if error is not None:
        raise error


def _count_lines(
    spec: RolloutJobSpec,
    storage: Storage,
    shards: list[int],
    on_total: Callable[[int], None] | None,
) -> asyncio.Future[list[int]]:
    """Count the input's lines per shard in a thread; `on_total` gets the slots of `shards`."""
    line_counts = asyncio.ensure_future(
        asyncio.to_thread(
            count_shard_lines,
            storage,
            parse_uri(spec.input.uri),
            num_shards=spec.parallelism,
            limit=spec.input.limit,
        )
    )
    if on_total is not None:
        repeats = spec.sampling.num_repeats
        line_counts.add_done_callback(
            lambda done: (
                None
                if done.cancelled() or done.exception()
                else on_total(sum(done.result()[s] for s in shards) * repeats)
            )
        )
    return line_counts

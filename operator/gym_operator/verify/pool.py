"""The verifier server's process pool: CPU-bound checks run here in small batches, never on the
event loop; a pool whose worker died or got stuck is replaced (its workers killed)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from gym_operator import metrics
from gym_operator.verify import builtins, sandbox
from gym_operator.verify.base import VerifierError, VerifyResult, get_verifier

log = logging.getLogger(__name__)


def outcome(result: VerifyResult) -> dict[str, Any]:
    return {
        "reward": float(result.reward),
        "components": {k: float(v) for k, v in result.components.items()},
        "details": result.details,
    }


def run_check(builtin: str, task: dict[str, Any], text: str, config: dict[str, Any]) -> dict:
    """Run one check (in a pool process); returns a JSON-able outcome or {"error": reason}."""
    try:
        return outcome(get_verifier(builtin)(task, text, config))  # type: ignore[arg-type]
    except VerifierError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # a verifier bug on an odd row is a failure row, not a dead server
        return {"error": f"verifier raised {type(exc).__name__}: {exc}"}


def run_batch(
    builtin: str, items: list[tuple[dict[str, Any], str]], config: dict[str, Any]
) -> list[dict]:
    """Run several checks in one pool call (fewer round trips under load)."""
    return [run_check(builtin, task, text, config) for task, text in items]


def _init_worker(isolation: sandbox.Isolation | None) -> None:
    if isolation is not None:
        sandbox.preset_isolation(isolation)


def _warm_up(builtin: str) -> int:
    get_verifier(builtin)
    return os.getpid()


class PoolManager:
    """The process pool, fed in small batches; recreated when a worker dies or gets stuck.

    Requests queue here; up to two batches per worker are in the pool at once, each taking what
    queued up meanwhile (at most `max_batch`), so under load a pool round trip serves many
    requests and at low load a request goes alone, without waiting.
    """

    def __init__(
        self,
        workers: int,
        builtin: str,
        config: dict[str, Any],
        max_batch: int,
        isolation: sandbox.Isolation | None = None,
    ) -> None:
        self.workers = workers
        self.builtin = builtin
        self.config = config
        self.max_batch = max_batch
        self.isolation = isolation
        self.restarts = 0
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(list(builtins.MODULES.get(builtin, ())))
        self.pool = self._new_pool()
        self._queue: list[tuple[dict[str, Any], str, asyncio.Future[dict[str, Any]]]] = []
        self._in_pool = 0
        self.in_flight = 0

    async def check(self, task: dict[str, Any], text: str) -> dict[str, Any]:
        """The outcome of one check; BrokenProcessPool when its worker died."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((task, text, future))
        self._dispatch()
        self.in_flight += 1
        try:
            return await future
        finally:
            self.in_flight -= 1

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        resubmitted = False
        while self._queue and self._in_pool < 2 * self.workers:
            share = -(-len(self._queue) // (2 * self.workers - self._in_pool))
            batch = self._queue[: min(self.max_batch, share)]
            del self._queue[: len(batch)]
            live = [(task, text, fut) for task, text, fut in batch if not fut.done()]
            if not live:
                continue
            pool = self.pool
            items = [(task, text) for task, text, _ in live]
            try:
                call = loop.run_in_executor(pool, run_batch, self.builtin, items, self.config)
            except (BrokenProcessPool, RuntimeError) as exc:  # a worker died while idle
                self.recycle(pool, f"submitting failed: {exc}")
                if resubmitted:
                    for _, _, future in live:
                        future.set_exception(BrokenProcessPool(str(exc)))
                else:  # nothing ran yet: the batch goes to the new pool
                    self._queue[:0] = live
                    resubmitted = True
                continue
            self._in_pool += 1
            call.add_done_callback(lambda done, b=live, p=pool: self._finish(done, b, p))

    def _finish(
        self,
        done: asyncio.Future[list[dict]],
        batch: list[tuple[dict[str, Any], str, asyncio.Future[dict[str, Any]]]],
        pool: ProcessPoolExecutor,
    ) -> None:
        self._in_pool -= 1
        error = done.exception() if not done.cancelled() else BrokenProcessPool("cancelled")
        if isinstance(error, BrokenProcessPool):
            self.recycle(pool, "a pool worker died")
        for index, (_, _, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result()[index])
        self._dispatch()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=_init_worker,
            initargs=(self.isolation,),
        )

    async def warm_up(self) -> None:
        """Start every worker and import the verifier in it before the first request."""
        loop = asyncio.get_running_loop()
        calls = [
            loop.run_in_executor(self.pool, _warm_up, self.builtin) for _ in range(self.workers)
        ]
        await asyncio.gather(*calls)

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for /health and tests)."""
        processes = getattr(self.pool, "_processes", None) or {}
        return sorted(processes)

    def recycle(self, pool: ProcessPoolExecutor, reason: str) -> None:
        """Replace `pool` (once, however many requests saw it fail) and kill its workers."""
        if pool is not self.pool:
            return
        log.warning("verifier pool recreated: %s", reason)
        processes = list((getattr(pool, "_processes", None) or {}).values())
        self.pool = self._new_pool()
        self.restarts += 1
        metrics.VERIFIER_POOL_RESTARTS.inc()
        for process in processes:
            if process.is_alive():
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the workers."""
        self.pool.shutdown(wait=False, cancel_futures=True)

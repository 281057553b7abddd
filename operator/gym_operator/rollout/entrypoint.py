"""`gymops generate`: the generator pod entrypoint, one shard of a RolloutJob.

Exit codes are `gym_operator.errors.ExitCode`'s: 0 the shard is finished (committed, manifest
marked finished); 1 unexpected error (retry the pod: work committed so far is kept); 2 bad spec
or arguments, or a missing input (do not retry); 3 stopped by SIGTERM/SIGINT: rollouts in
progress get up to 20 s to finish, what is done is committed, the rest resumes on restart; 4 the
output prefix holds another spec's results (do not retry without --restart or another output
URI); 5 the model or verifier endpoint failed `retry.endpointFailureLimit` rollouts in a row and
was still down after `retry.endpointWaitSeconds` (retry the pod later: those rollouts are not
recorded, the restart samples them again); 6 every shard finished but the job failed by
`failurePolicy` (too many failure rows; no _SUCCESS; the reason names the top failure classes;
do not retry the pod: a rerun of the job retries the retryable failures). On a non-zero exit
other than 3 the reason goes to the termination-message file, which Kubernetes shows in the
pod's status.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from gym_operator import errors, metrics
from gym_operator.api import RolloutJob, SpecError, load_resource
from gym_operator.rollout import heap
from gym_operator.rollout.runner import parse_shard, run_job
from gym_operator.termination import run_worker

log = logging.getLogger(__name__)


def shard_from_flag(arg: str, parallelism: int) -> int:
    """The shard index of `--shard i/N`; BadSpec unless 0 <= i < N and N is spec.parallelism."""
    try:
        index, count = parse_shard(arg)
    except ValueError as exc:
        raise errors.BadSpec(str(exc)) from None
    if count != parallelism:
        raise errors.BadSpec(f"--shard {arg}: N must equal spec.parallelism ({parallelism})")
    return index


def resolve_shard(arg: str | None, parallelism: int) -> int:
    """The shard index from --shard i/N or JOB_COMPLETION_INDEX; N must equal spec.parallelism."""
    if arg:
        return shard_from_flag(arg, parallelism)
    raw = os.environ.get("JOB_COMPLETION_INDEX", "0" if parallelism == 1 else "")
    if not raw.isdigit() or int(raw) >= parallelism:
        raise errors.BadSpec(
            f"no shard: pass --shard i/{parallelism} or set JOB_COMPLETION_INDEX below "
            f"{parallelism} (got {raw!r})"
        )
    return int(raw)


def main(args: argparse.Namespace) -> int:
    """Run one shard; see the module docstring for exit codes."""
    shard = args.shard or os.environ.get("JOB_COMPLETION_INDEX", "0")
    return run_worker(lambda: _main(args), args.termination_log, f"shard {shard}")


def _main(args: argparse.Namespace) -> None:
    """Run one shard; a GymopsError says how it failed (see `gym_operator.errors`)."""
    job = load_job(args.spec)
    shard = resolve_shard(args.shard, job.spec.parallelism)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    heap.settle()
    failed_reason = asyncio.run(_generate(job, shard, args))
    if failed_reason:
        raise errors.JobFailed(failed_reason)


def load_job(path: str) -> RolloutJob:
    """The RolloutJob a generator pod can run (SpecError for anything else)."""
    try:
        job = load_resource(path)
    except OSError as exc:
        raise SpecError(path, [f"(file): cannot read it: {exc}"]) from None
    if not isinstance(job, RolloutJob):
        raise SpecError(path, [f"kind: expected RolloutJob, got {job.kind}"])
    if job.spec.policy.embedded:
        raise SpecError(path, ["policy.embedded: only `gymops run` (local mode)"])
    if not job.spec.policy.urls():
        raise SpecError(path, ["policy: the operator resolves server/endpointRef"])
    return job


async def _generate(job: RolloutJob, shard: int, args: argparse.Namespace) -> str | None:
    """Run the shard; why the job failed by its failurePolicy, when this shard finished it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    result = await run_job(
        job.spec,
        shards=[shard],
        restart=args.restart,
        verifier_url=args.verifier_url,
        stop=stop,
    )
    stats = result.shards[0]
    log.info(
        "shard %d/%d finished: %d completed, %d failed, %d input errors; job complete: %s",
        shard,
        job.spec.parallelism,
        stats.completed,
        stats.failed,
        stats.input_errors,
        result.success,
    )
    return result.failed_reason

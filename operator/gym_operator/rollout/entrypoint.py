"""`gymops generate`: the generator pod entrypoint, one shard of a RolloutJob.

Exit codes: 0 the shard is finished (committed, manifest marked finished); 1 unexpected error
(retry the pod: work committed so far is kept); 2 bad spec or arguments (do not retry);
3 stopped by SIGTERM/SIGINT: rollouts in progress get up to 20 s to finish, what is done is
committed, the rest resumes on restart; 4 the output prefix holds another spec's results (do not
retry without --restart or another output URI); 5 the model or verifier endpoint failed
`retry.endpointFailureLimit` rollouts in a row and was still down after
`retry.endpointWaitSeconds` (retry the pod later: those rollouts are not recorded, the restart
samples them again); 6 every shard finished but the job failed by `failurePolicy` (too many
failure rows; no _SUCCESS; the reason names the top failure classes; do not retry the pod: a
rerun of the job retries the retryable failures). On a non-zero exit other than 3 the reason
goes to
the termination-message file, which Kubernetes shows in the pod's status.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from gym_operator import metrics
from gym_operator.api import RolloutJob, SpecError, load_resource
from gym_operator.rollout.breaker import EndpointDown
from gym_operator.rollout.generator import ShardInterrupted
from gym_operator.rollout.job import JobConflict
from gym_operator.rollout.runner import parse_shard, run_job
from gym_operator.storage.store import ObjectNotFound
from gym_operator.termination import write_termination_message

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_SPEC = 2
EXIT_INTERRUPTED = 3
EXIT_CONFLICT = 4
EXIT_ENDPOINT_DOWN = 5
EXIT_TOO_MANY_FAILURES = 6


def resolve_shard(arg: str | None, parallelism: int) -> int:
    """The shard index from --shard i/N or JOB_COMPLETION_INDEX; N must equal spec.parallelism."""
    if arg:
        index, count = parse_shard(arg)
        if count != parallelism:
            raise ValueError(f"--shard {arg}: N must equal spec.parallelism ({parallelism})")
        return index
    raw = os.environ.get("JOB_COMPLETION_INDEX", "0" if parallelism == 1 else "")
    if not raw.isdigit() or int(raw) >= parallelism:
        raise ValueError(
            f"no shard: pass --shard i/{parallelism} or set JOB_COMPLETION_INDEX below "
            f"{parallelism} (got {raw!r})"
        )
    return int(raw)


def main(args: argparse.Namespace) -> int:
    """Run one shard; see the module docstring for exit codes."""
    code, reason = _main(args)
    if code not in (EXIT_OK, EXIT_INTERRUPTED):
        write_termination_message(args.termination_log, reason)
    return code


def _main(args: argparse.Namespace) -> tuple[int, str]:
    """(exit code, why) of one shard's run."""
    try:
        job = load_resource(args.spec)
        if not isinstance(job, RolloutJob):
            raise SpecError(args.spec, [f"kind: expected RolloutJob, got {job.kind}"])
        if job.spec.policy.embedded:
            raise SpecError(args.spec, ["policy.embedded: only `gymops run` (local mode)"])
        if not job.spec.policy.urls():
            raise SpecError(args.spec, ["policy: the operator resolves server/endpointRef"])
        shard = resolve_shard(args.shard, job.spec.parallelism)
    except (SpecError, ValueError, OSError) as exc:
        return _failed(EXIT_BAD_SPEC, str(exc))
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    try:
        failed_reason = asyncio.run(_generate(job, shard, args))
    except ShardInterrupted as exc:
        log.warning("%s", exc)
        return EXIT_INTERRUPTED, str(exc)
    except EndpointDown as exc:
        return _failed(EXIT_ENDPOINT_DOWN, str(exc))
    except JobConflict as exc:
        return _failed(EXIT_CONFLICT, str(exc))
    except ValueError as exc:
        return _failed(EXIT_BAD_SPEC, str(exc))
    except ObjectNotFound as exc:
        return _failed(EXIT_BAD_SPEC, f"not found: {exc}")
    except Exception as exc:
        log.exception("shard %d failed", shard)
        return EXIT_ERROR, f"shard {shard} failed: {type(exc).__name__}: {exc}"
    if failed_reason:
        return _failed(EXIT_TOO_MANY_FAILURES, failed_reason)
    return EXIT_OK, ""


def _failed(code: int, reason: str) -> tuple[int, str]:
    log.error("%s", reason)
    return code, reason


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

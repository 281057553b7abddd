"""`gymops`: the command line. Each subcommand parses its flags here and hands over to the
module that owns the work; the CLI owns the terminal (rich), library code only logs."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from gym_operator import termination

# subcommand -> "module:function" taking the parsed args and returning an exit code.
COMMANDS: dict[str, str] = {
    "run": "gym_operator.cli_run:main",
    "generate": "gym_operator.rollout.entrypoint:main",
    "verify-server": "gym_operator.verify.entrypoint:main",
    "build-dataset": "gym_operator.data.entrypoint:main",
    "crds": "gym_operator.controller.crdgen:main",
    "operator": "gym_operator.controller.entrypoint:main",
    "demo": "gym_operator.cli_demo:main",
    "view": "gym_operator.viewer.app:main",
}


def add_termination_log(parser: argparse.ArgumentParser) -> None:
    """--termination-log of the worker entrypoints (see gym_operator.termination)."""
    parser.add_argument(
        "--termination-log",
        default=termination.DEFAULT_PATH,
        help="Where to write why the worker stopped when it exits non-zero, if the file exists "
        "(Kubernetes shows it as the container's termination message).",
    )


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their flags."""
    parser = argparse.ArgumentParser(prog="gymops", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="Logging level (default INFO).")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Run a RolloutJob or Dataset YAML on this machine.")
    run.add_argument("file", help="YAML file with one RolloutJob or Dataset.")
    run.add_argument("--output", help="Override spec.output.uri.")
    run.add_argument("--shard", help="Run only shard i of N, as i/N (default: all shards).")
    run.add_argument(
        "--restart",
        action="store_true",
        help="Delete everything under the output prefix and start over (after a spec change).",
    )
    run.add_argument("--no-progress", action="store_true", help="No progress bar.")

    gen = sub.add_parser("generate", help="Generator pod entrypoint: run one shard of a job.")
    gen.add_argument("--spec", required=True, help="RolloutJob YAML/JSON file.")
    gen.add_argument(
        "--shard", help="i/N; default: JOB_COMPLETION_INDEX of spec.parallelism shards."
    )
    gen.add_argument("--verifier-url", help="Verifier server base URL (overrides the spec).")
    gen.add_argument("--metrics-port", type=int, default=0, help="Serve /metrics (0: off).")
    gen.add_argument(
        "--restart", action="store_true", help="Delete the output prefix's contents, start over."
    )
    add_termination_log(gen)

    ver = sub.add_parser("verify-server", help="Serve a built-in verifier (NeMo Gym protocol).")
    ver.add_argument("--verifier", required=True, help="Built-in verifier name, e.g. math.")
    ver.add_argument("--config", help="Verifier config as JSON or @file.")
    ver.add_argument("--host", default="0.0.0.0", help="Bind address.")
    ver.add_argument("--port", type=int, default=8000, help="Port.")
    ver.add_argument("--workers", type=int, help="Process pool size (default: cores).")
    ver.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="Seconds one /verify may take before a 504 (default 120, as verifier.timeoutSeconds).",
    )

    ds = sub.add_parser("build-dataset", help="Dataset builder pod entrypoint.")
    ds.add_argument("--spec", required=True, help="Dataset YAML/JSON file.")
    ds.add_argument("--source-uri", action="append", default=[], help="Resolved source prefix.")
    add_termination_log(ds)

    crds = sub.add_parser("crds", help="Write the CRD YAML generated from api/.")
    crds.add_argument("--output", default="crds", help="Directory to write into.")

    op = sub.add_parser("operator", help="Run the operator (kopf).")
    op.add_argument("--namespace", action="append", default=[], help="Watch these namespaces.")
    op.add_argument("--all-namespaces", action="store_true", help="Watch the whole cluster.")
    op.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="Liveness URL.")
    op.add_argument("--metrics-port", type=int, default=9090, help="Operator /metrics port.")

    demo = sub.add_parser("demo", help="The embedded demo: local model, math tasks, a dataset.")
    demo.add_argument("--output", default="demo-output", help="Where to write the results.")
    demo.add_argument("--limit", type=int, help="Use only the first N tasks (default: all).")
    demo.add_argument("--repeats", type=int, help="Responses per task (default: the spec's 4).")

    view = sub.add_parser("view", help="Browse rollouts or a dataset in a local web app.")
    view.add_argument("uri", nargs="*", help="Output or Dataset prefixes (file://, s3://).")
    view.add_argument("--kubernetes", action="store_true", help="List the namespace's resources.")
    view.add_argument("--namespace", help="With --kubernetes (default: the pod's own namespace).")
    view.add_argument("--host", default="127.0.0.1", help="Bind address (default loopback only).")
    view.add_argument("--port", type=int, default=8765, help="Port (0: any free one).")
    view.add_argument("--no-browser", action="store_true", help="Do not open a browser.")
    view.add_argument("--refresh", type=float, default=2.0, help="Seconds between manifest reads.")
    view.add_argument("--cache-dir", help="Index cache (default ~/.cache/gymops/viewer).")
    view.add_argument("--no-cache", action="store_true", help="Keep the index in memory only.")
    return parser


def resolve(target: str) -> Callable[[argparse.Namespace], int]:
    """Import `module:function` lazily, so one subcommand's dependencies never slow another."""
    module_name, func_name = target.split(":")
    func: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(module_name), func_name
    )
    return func


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gymops` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return resolve(COMMANDS[args.command])(args)


if __name__ == "__main__":
    sys.exit(main())

"""`gymops`: the command line. Each subcommand parses its flags here and hands over to the
module that owns the work; the CLI owns the terminal (rich), library code only logs."""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gym_operator import termination
from gym_operator.storage import errors as storage_errors

# subcommand -> "module:function" taking the parsed args and returning an exit code.
COMMANDS: dict[str, str] = {
    "run": "gym_operator.cli_run:main",
    "generate": "gym_operator.rollout.entrypoint:main",
    "verify-server": "gym_operator.verify.entrypoint:main",
    "build-dataset": "gym_operator.data.entrypoint:main",
    "crds": "gym_operator.controller.crdgen:main",
    "operator": "gym_operator.controller.entrypoint:main",
    "demo": "gym_operator.cli_demo:main",
    "validate": "gym_operator.cli_validate:main",
    "status": "gym_operator.cli_status:main",
    "show": "gym_operator.cli_show:main",
    "completion": "gym_operator.cli_completion:main",
    "view": "gym_operator.viewer.app:main",
    "verifier-eval": "gym_operator.cli_verifier_eval:main",
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
    parser.add_argument("--version", action="version", version=f"gymops {package_version()}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=LOG_LEVELS,
        help="Logging level (default INFO).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="Run a RolloutJob or Dataset YAML on this machine.")
    run.add_argument(
        "file",
        help="YAML file with a RolloutJob or a Dataset, or both (two documents, run in order).",
    )
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
    ver.add_argument(
        "--host",
        default="127.0.0.1",
        help="Bind address (default 127.0.0.1: this machine only; 0.0.0.0 serves every "
        "interface, as the operator's verifier pods do).",
    )
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
    demo.add_argument(
        "--restart",
        action="store_true",
        help="Delete the demo's earlier rollouts under --output and sample afresh.",
    )
    _add_inspection(sub)

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

    ev = sub.add_parser("verifier-eval", help="Agreement, TPR and FPR of a verifier on labels.")
    ev.add_argument("file", help="Labelled JSONL: task rows with `label` and `response(_text)`.")
    ev.add_argument("--verifier", required=True, help="Built-in name or a /verify server URL.")
    ev.add_argument("--config", help="Built-in verifier config as JSON or @file.")
    ev.add_argument("--workers", type=int, help="Built-in: process pool size (default: cores).")
    ev.add_argument("--timeout", type=float, default=120.0, help="Seconds one /verify may take.")
    ev.add_argument("--concurrency", type=int, default=16, help="Requests in flight.")
    ev.add_argument("--threshold", type=float, default=1.0, help="Reward counted as accepted.")
    ev.add_argument("--show", type=int, default=20, help="Disagreements to print.")
    ev.add_argument("--json", help="Also write the figures to this JSON file.")
    return parser


def _add_inspection(sub: Any) -> None:
    """validate, status, show and completion."""
    val = sub.add_parser(
        "validate", help="Check spec files offline: the models, verifier configs, CRD schema."
    )
    val.add_argument("files", nargs="+", metavar="FILE", help="YAML files (several documents ok).")
    status = sub.add_parser("status", help="Progress of a RolloutJob's output prefix.")
    status.add_argument("prefix", help="Output prefix: a directory, file:// or s3:// URI.")
    show = sub.add_parser("show", help="Print rollouts of an output prefix, repeats side by side.")
    show.add_argument("prefix", help="Output prefix: a directory, file:// or s3:// URI.")
    show.add_argument("--task", type=int, help="Only this task index.")
    show.add_argument("--limit", type=int, default=3, help="Tasks to show (default 3).")
    comp = sub.add_parser("completion", help="Print a shell completion script.")
    comp.add_argument("shell", choices=("bash", "zsh"), help="Shell to complete in.")


def package_version() -> str:
    """The installed gym-operator version (or `unknown` when run from a bare checkout)."""
    try:
        return importlib.metadata.version("gym-operator")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse; a flag the subcommand does not know is reported with that subcommand's usage."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = subparser(parser, args.command)
        known = [flag for action in sub._actions for flag in action.option_strings]
        unknown = extra[0]
        close = difflib.get_close_matches(unknown.split("=")[0], known, n=1)
        guess = f" (did you mean {close[0]}?)" if close else ""
        sub.error(f"unrecognized arguments: {' '.join(extra)}{guess}")
    return args


def subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of one subcommand."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    raise KeyError(name)


def resolve(target: str) -> Callable[[argparse.Namespace], int]:
    """Import `module:function` lazily, so one subcommand's dependencies never slow another."""
    module_name, func_name = target.split(":")
    func: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(module_name), func_name
    )
    return func


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gymops` console script."""
    args = parse_args(build_parser(), argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return resolve(COMMANDS[args.command])(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        explained = storage_errors.explain(exc)
        if explained is None:
            raise
        sys.stderr.write(f"gymops {args.command}: {explained}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())

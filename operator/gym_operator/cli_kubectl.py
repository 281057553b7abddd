"""`kubectl gymops`: a kubectl plugin (the `kubectl-gymops` command) for RolloutJobs.

- `kubectl gymops status NAME`: phase, progress, rewards, message and conditions in one table.
- `kubectl gymops logs NAME [--shard N] [--verifier]`: the generator pods' logs, by shard.
- `kubectl gymops watch NAME`: one line per change of phase or progress, until the job ends.

It talks to the cluster with the official client and the current kubeconfig context (or the
in-cluster account); `-n/--namespace` overrides the context's namespace. Exit codes: 0 ok (and
for `watch`, Succeeded), 1 the job Failed, 2 not found or bad arguments, 3 cannot reach the
cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gym_operator.api import API_GROUP, API_VERSION, TERMINAL_PHASES
from gym_operator.controller import constants as c

EXIT_OK, EXIT_FAILED, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 0, 1, 2, 3


class NotFound(Exception):
    """The RolloutJob does not exist in the namespace."""


class Cluster:
    """The few reads the plugin makes."""

    def __init__(self, namespace: str | None, kubeconfig: str | None = None) -> None:
        from kubernetes import client, config

        try:
            config.load_kube_config(config_file=kubeconfig)
            _, context = config.list_kube_config_contexts(config_file=kubeconfig)
            default = (context or {}).get("context", {}).get("namespace") or "default"
        except config.ConfigException:
            config.load_incluster_config()
            default = "default"
        self.namespace = namespace or default
        self.custom = client.CustomObjectsApi()
        self.core = client.CoreV1Api()
        self.errors = (client.ApiException,)

    def rolloutjob(self, name: str) -> dict[str, Any]:
        """The resource; NotFound when absent."""
        from kubernetes.client import ApiException

        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                API_GROUP, API_VERSION, self.namespace, "rolloutjobs", name
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"rolloutjob {self.namespace}/{name} not found") from None
            raise
        return found

    def pods(self, name: str, component: str) -> list[dict[str, Any]]:
        """The job's pods of one component (plain dicts), by shard (the Job completion index)."""
        selector = f"{c.LABEL_ROLLOUTJOB}={name},{c.LABEL_COMPONENT}={component}"
        answer = self.core.list_namespaced_pod(
            self.namespace, label_selector=selector, _preload_content=False
        )
        pods: list[dict[str, Any]] = json.loads(answer.data).get("items") or []
        return sorted(pods, key=lambda p: (shard_of(p), p["metadata"]["name"]))

    def log(self, pod: str, tail: int | None) -> str:
        """One pod's log (its first container)."""
        answer = self.core.read_namespaced_pod_log(
            pod, self.namespace, tail_lines=tail, _preload_content=False
        )
        return bytes(answer.data).decode("utf-8", errors="replace")


def shard_of(pod: dict[str, Any]) -> int:
    """The shard a generator pod runs (its Job completion index), -1 when unknown."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    value = annotations.get("batch.kubernetes.io/job-completion-index", "")
    return int(value) if value.isdigit() else -1


def status_table(body: dict[str, Any]) -> Table:
    """The RolloutJob's status as a two-column table."""
    status = body.get("status") or {}
    progress = status.get("progress") or {}
    rewards = status.get("rewards") or {}
    eta = progress.get("etaSeconds")
    rows = [
        ("phase", str(status.get("phase", "-"))),
        ("progress", f"{progress.get('summary', '-')} ({progress.get('percent', 0)}%)"),
        ("completed / failed", f"{progress.get('completed', 0)} / {progress.get('failed', 0)}"),
        ("rollouts/s", str(progress.get("rolloutsPerSecond", "-"))),
        ("ETA", "-" if eta is None else f"{eta:.0f} s"),
        ("reward mean / pass rate", f"{rewards.get('mean', '-')} / {rewards.get('passRate', '-')}"),
        ("message", str(status.get("message", ""))),
        ("output", str((status.get("output") or {}).get("uri", "-"))),
    ]
    for cond in status.get("conditions") or []:
        rows.append(
            (
                f"condition {cond.get('type')}",
                f"{cond.get('status')} ({cond.get('reason')}) {cond.get('message', '')}",
            )
        )
    table = Table(title=f"rolloutjob {body['metadata']['name']}", show_header=False)
    table.add_column("what")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(Text(name), Text(value))
    return table


def watch_line(body: dict[str, Any]) -> str:
    """One line: phase, done/total, rate, ETA, reward, message."""
    status = body.get("status") or {}
    progress = status.get("progress") or {}
    eta = progress.get("etaSeconds")
    return (
        f"{status.get('phase', '-'):<10} {progress.get('summary', '-'):>12}  "
        f"{progress.get('rolloutsPerSecond', '-')}/s  ETA {'-' if eta is None else f'{eta:.0f}s'}"
        f"  reward {(status.get('rewards') or {}).get('mean', '-')}  {status.get('message', '')}"
    )


def cmd_status(cluster: Cluster, args: argparse.Namespace, console: Console) -> int:
    """`status NAME`."""
    body = cluster.rolloutjob(args.name)
    console.print(status_table(body))
    return EXIT_FAILED if (body.get("status") or {}).get("phase") == "Failed" else EXIT_OK


def cmd_logs(cluster: Cluster, args: argparse.Namespace, console: Console) -> int:
    """`logs NAME [--shard N] [--verifier] [--tail K]`."""
    cluster.rolloutjob(args.name)
    component = c.COMPONENT_VERIFIER if args.verifier else c.COMPONENT_GENERATOR
    pods = cluster.pods(args.name, component)
    if args.shard is not None:
        pods = [p for p in pods if shard_of(p) == args.shard]
    if not pods:
        console.print(f"[yellow]no {component} pods of {escape(args.name)} (yet)[/yellow]")
        return EXIT_NOT_FOUND
    for pod in pods:
        label = f"shard {shard_of(pod)}" if component == c.COMPONENT_GENERATOR else "verifier"
        name = pod["metadata"]["name"]
        console.rule(f"{label}: {name} ({(pod.get('status') or {}).get('phase', '?')})")
        try:
            sys.stdout.write(cluster.log(name, args.tail))
        except cluster.errors as exc:
            console.print(f"[yellow]no log: {escape(str(getattr(exc, 'reason', exc)))}[/yellow]")
        sys.stdout.flush()
    return EXIT_OK


def cmd_watch(cluster: Cluster, args: argparse.Namespace, console: Console) -> int:
    """`watch NAME [--interval S]`: print a line per change until Succeeded or Failed."""
    last = ""
    while True:
        body = cluster.rolloutjob(args.name)
        line = watch_line(body)
        if line != last:
            console.print(Text(line), soft_wrap=True)
            last = line
        phase = (body.get("status") or {}).get("phase")
        if phase in TERMINAL_PHASES:
            return EXIT_OK if phase == "Succeeded" else EXIT_FAILED
        time.sleep(args.interval)


COMMANDS = {"status": cmd_status, "logs": cmd_logs, "watch": cmd_watch}


def build_parser() -> argparse.ArgumentParser:
    """The plugin's flags."""
    parser = argparse.ArgumentParser(prog="kubectl gymops", description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--namespace", help="Namespace (default: the context's).")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG, ~/.kube).")
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", help="Phase, progress, rewards, message, conditions.")
    status.add_argument("name", help="RolloutJob name.")
    logs = sub.add_parser("logs", help="The generator pods' logs, by shard.")
    logs.add_argument("name", help="RolloutJob name.")
    logs.add_argument("--shard", type=int, help="Only this shard.")
    logs.add_argument("--verifier", action="store_true", help="The verifier pods' logs instead.")
    logs.add_argument("--tail", type=int, help="Only the last N lines of each pod.")
    watch = sub.add_parser("watch", help="A line per change until the job ends.")
    watch.add_argument("name", help="RolloutJob name.")
    watch.add_argument("--interval", type=float, default=2.0, help="Seconds between reads.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kubectl-gymops` console script."""
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        cluster = Cluster(args.namespace, args.kubeconfig)
        return COMMANDS[args.command](cluster, args, console)
    except NotFound as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return EXIT_NOT_FOUND
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if type(exc).__module__.startswith(("kubernetes", "urllib3")):
            console.print(f"[red]cannot reach the cluster: {escape(str(exc))[:300]}[/red]")
            return EXIT_UNREACHABLE
        raise


if __name__ == "__main__":
    sys.exit(main())

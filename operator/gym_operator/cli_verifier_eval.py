"""`gymops verifier-eval`: how often a verifier agrees with labelled answers (TPR, FPR, by group).

The labelled file is JSONL: each row a task row (NeMo Gym shape) with `label` (true: a careful
grader accepts the answer), optional `category`, and the answer as `response` (a Responses-API
object) or `response_text` (plain text, wrapped into one). `--verifier` is a built-in name, served
here on loopback by the same server `gymops verify-server` runs, or the base URL of any NeMo Gym
resource server; every row goes through `POST /verify`. A reward at or above `--threshold` is an
acceptance; a row the verifier cannot score (4xx/5xx) counts as not accepted and is listed.
When no row at all is scored (e.g. nothing listens at the URL), the command exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from gym_operator import errors
from gym_operator.protocol.response import from_chat_completion
from gym_operator.verify.server import start_server
from gym_operator.verify.settings import settings_from

EVAL_FIELDS = ("label", "category", "response_text")
EXIT_OK, EXIT_NOTHING_SCORED, EXIT_BAD_INPUT = 0, 1, 2


class LabelledFileError(errors.BadSpec, ValueError):
    """A labelled file that cannot be read; the message names the line."""


@dataclass
class Verdict:
    """One row's label and what the verifier answered."""

    row_id: str
    category: str
    label: bool
    reward: float | None
    accepted: bool
    error: str | None = None
    extracted: Any = None
    judge_asked: bool = False
    row: dict[str, Any] = field(default_factory=dict)


@dataclass
class Counts:
    """Confusion counts of one category (or all rows)."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0
    failed: int = 0
    judged: int = 0

    def add(self, verdict: Verdict) -> None:
        """Count one verdict."""
        if verdict.label:
            self.tp, self.fn = self.tp + verdict.accepted, self.fn + (not verdict.accepted)
        else:
            self.fp, self.tn = self.fp + verdict.accepted, self.tn + (not verdict.accepted)
        self.failed += verdict.error is not None
        self.judged += verdict.judge_asked

    def figures(self) -> dict[str, float | int]:
        """n, agreement, TPR, FPR and TPR - FPR (Youden's J)."""
        n = self.tp + self.fn + self.fp + self.tn
        tpr = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        fpr = self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0
        return {
            "n": n,
            "agreement": (self.tp + self.tn) / n if n else 0.0,
            "tpr": tpr,
            "fpr": fpr,
            "tpr_minus_fpr": tpr - fpr,
            "failed": self.failed,
            "judge_asked": self.judged,
        }


def read_labelled(path: Path) -> list[dict[str, Any]]:
    """The rows of a labelled JSONL file; LabelledFileError names the bad line."""
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise LabelledFileError(f"{path}:{number}: not JSON: {exc}") from None
            if not isinstance(row, dict):
                raise LabelledFileError(f"{path}:{number}: a row must be a JSON object")
            if not isinstance(row.get("label"), bool | int):
                raise LabelledFileError(f"{path}:{number}: `label` must be true or false")
            if not isinstance(row.get("response"), dict) and not isinstance(
                row.get("response_text"), str
            ):
                raise LabelledFileError(
                    f"{path}:{number}: needs `response` (object) or `response_text` (string)"
                )
            rows.append({**row, "_line": number})
    if not rows:
        raise LabelledFileError(f"{path}: no rows")
    return rows


def verify_body(row: dict[str, Any]) -> dict[str, Any]:
    """The /verify body of a labelled row: the task fields plus a Responses-API `response`."""
    body = {k: v for k, v in row.items() if k not in EVAL_FIELDS and k != "_line"}
    if "response" not in body:
        message = {"role": "assistant", "content": row["response_text"]}
        body["response"] = from_chat_completion({"choices": [{"message": message}]}, {})
    return body


async def judge_row(
    http: aiohttp.ClientSession, url: str, row: dict[str, Any], threshold: float
) -> Verdict:
    """POST one row to /verify and compare the answer with its label."""
    verdict = Verdict(
        row_id=str(row.get("id", f"line {row['_line']}")),
        category=str(row.get("category", "uncategorised")),
        label=bool(row["label"]),
        reward=None,
        accepted=False,
        row=row,
    )
    try:
        async with http.post(f"{url}/verify", json=verify_body(row)) as resp:
            answer = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        verdict.error = f"{type(exc).__name__}: {exc}"
        return verdict
    if status != 200 or not isinstance(answer, dict) or "reward" not in answer:
        detail = answer.get("error") if isinstance(answer, dict) else None
        verdict.error = f"HTTP {status}: {detail or answer}"
        return verdict
    verdict.reward = float(answer["reward"])
    verdict.accepted = verdict.reward >= threshold
    verdict.extracted = (answer.get("verifier_details") or {}).get("extracted")
    verdict.judge_asked = (answer.get("reward_components") or {}).get("judge_asked") == 1.0
    return verdict


async def judge_all(
    url: str, rows: list[dict[str, Any]], threshold: float, concurrency: int
) -> list[Verdict]:
    """Every row through /verify, `concurrency` at a time, in file order."""
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(trust_env=False) as http:

        async def one(row: dict[str, Any]) -> Verdict:
            async with limit:
                return await judge_row(http, url, row, threshold)

        return list(await asyncio.gather(*(one(row) for row in rows)))


async def evaluate(args: argparse.Namespace, rows: list[dict[str, Any]]) -> list[Verdict]:
    """Serve the built-in on loopback (or use the URL) and judge every row."""
    if args.verifier.startswith(("http://", "https://")):
        return await judge_all(args.verifier.rstrip("/"), rows, args.threshold, args.concurrency)
    settings = settings_from(args.verifier, args.config, args.workers, args.timeout)
    runner, url = await start_server(settings)
    try:
        return await judge_all(url, rows, args.threshold, args.concurrency)
    finally:
        await runner.cleanup()


def summarise(verdicts: list[Verdict]) -> dict[str, Any]:
    """Figures overall and per category."""
    overall, per_category = Counts(), defaultdict(Counts)
    for verdict in verdicts:
        overall.add(verdict)
        per_category[verdict.category].add(verdict)
    return {
        "overall": overall.figures(),
        "categories": {name: per_category[name].figures() for name in sorted(per_category)},
    }


def _table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("category", "n", "agreement", "TPR", "FPR", "TPR-FPR", "failed", "judge asked"):
        if column == "category":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    lines = [*summary["categories"].items(), ("overall", summary["overall"])]
    for name, f in lines:
        table.add_row(
            name,
            str(f["n"]),
            f"{f['agreement']:.3f}",
            f"{f['tpr']:.3f}",
            f"{f['fpr']:.3f}",
            f"{f['tpr_minus_fpr']:.3f}",
            str(f["failed"]),
            str(f["judge_asked"]),
        )
    return table


def _disagreements(verdicts: list[Verdict], limit: int) -> Table:
    wrong = [v for v in verdicts if v.accepted != v.label]
    table = Table(title=f"Disagreements ({len(wrong)}; showing up to {limit})")
    for column in ("id", "category", "label", "reward", "read as", "expected", "response end"):
        table.add_column(column, overflow="fold")
    for verdict in wrong[:limit]:
        row = verdict.row
        text = row.get("response_text") or json.dumps(row.get("response", {}))[-200:]
        table.add_row(
            verdict.row_id,
            verdict.category,
            "correct" if verdict.label else "wrong",
            verdict.error or f"{verdict.reward:g}",
            str(verdict.extracted)[:80],
            str(row.get("expected_answer"))[:60],
            text[-120:],
        )
    return table


def main(args: argparse.Namespace) -> int:
    """Entry point of `gymops verifier-eval`."""
    console = Console(width=max(Console().width, 120))
    try:
        rows = read_labelled(Path(args.file))
        verdicts = asyncio.run(evaluate(args, rows))
    except (errors.BadSpec, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return EXIT_BAD_INPUT
    if all(v.error is not None for v in verdicts):
        console.print(f"[red]error:[/red] the verifier scored no row; first: {verdicts[0].error}")
        return EXIT_NOTHING_SCORED
    summary = summarise(verdicts)
    console.print(_table(summary, f"{args.verifier} on {args.file}"))
    console.print(_disagreements(verdicts, args.show))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK

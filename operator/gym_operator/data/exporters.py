"""Exporters: an Example as the row a training framework loads unmodified.

Each row has the columns of its (format, kind) schema (schemas.py; the writer fills what a row
lacks). The shapes follow research/formats.md, each checked against the framework's loader:
- trl: conversational prompt/completion (sft), prompt/chosen/rejected (dpo, explicit prompt),
  prompt/completion/label (kto), prompt + columns for reward functions (rl; `solution` is the
  ground truth as trl.rewards.accuracy_reward reads it). `tools` is JSON text, as TRL accepts.
- openrlhf: input/output (sft), prompt/chosen/rejected for `--data.prompt_key prompt` (dpo),
  input + label + datasource (rl). No KTO dataset exists in OpenRLHF 0.11.
- verl: RLHFDataset rows (rl: data_source, prompt, ability, reward_model.ground_truth,
  extra_info) and MultiTurnSFTDataset rows (sft: messages, tools). verl has no DPO/KTO trainer.
- nemo-rl: openai_format messages (sft), PreferenceDataset context/completions (dpo), NeMo Gym
  rows with agent_ref for NemoGymDataset (rl). No KTO in NeMo-RL.
- nemo-gym: the rollout rows themselves (sft) or the task rows (rl), NeMo Gym's own format.

Prompt/completion rows (trl sft/kto, openrlhf sft) cannot mask a message inside the completion,
so with `sft.toolTurns: context` (the default) a response's tool calls and outputs move into the
prompt and only the answer after the last tool output is the completion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gym_operator import errors
from gym_operator.api.dataset import SUPPORTED_FILE_FORMATS, SUPPORTED_KINDS
from gym_operator.data import rows
from gym_operator.data.kinds import Example


class UnsupportedExport(errors.BadSpec, ValueError):
    """The format has no dataset class for this kind."""


def check_supported(fmt: str, kind: str) -> None:
    """Raise UnsupportedExport naming the kinds the format does support."""
    if kind not in SUPPORTED_KINDS[fmt]:
        raise UnsupportedExport(
            f"spec.format {fmt!r} has no loader for spec.kind {kind!r};"
            f" {fmt} supports kinds {', '.join(SUPPORTED_KINDS[fmt])}"
        )


def check_file_format(fmt: str, file_format: str) -> None:
    """Raise UnsupportedExport naming the file types the format's loaders read."""
    if file_format not in SUPPORTED_FILE_FORMATS[fmt]:
        raise UnsupportedExport(
            f"spec.output.fileFormat {file_format!r} cannot be read by {fmt}'s loaders;"
            f" {fmt} reads {', '.join(SUPPORTED_FILE_FORMATS[fmt])}"
        )


@dataclass(frozen=True)
class ExportContext:
    """What an exporter needs beyond the example: split, row index, source, settings."""

    split: str
    index: int
    verifier: str | None = None
    source: str = ""
    tool_turns: str = "context"
    reward: dict[str, Any] | None = None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # the task's own key order (tool schemas)


def _tools(example: Example) -> str:
    """The tool schemas as JSON text ("[]" when the task offered none)."""
    return _json(example.tools or [])


def task_id(source: str, task_index: int) -> str:
    """A row identity unique across sources: `<source>#<task index>`."""
    return f"{source}#{task_index}"


def _stats(example: Example, ctx: ExportContext) -> dict[str, Any]:
    return {
        "source": ctx.source,
        "task_index": example.task_index,
        "task_id": task_id(ctx.source, example.task_index),
        "pass_rate": round(example.stats.pass_rate, 6),
        "mean_reward": round(example.stats.mean_reward, 6),
        "num_rollouts": example.stats.verified,
    }


def _task(example: Example) -> str:
    """The verifier fields of the task as JSON text (lists and objects kept as they are)."""
    return _json(rows.verifier_fields(example.task))


def data_source(example: Example, ctx: ExportContext) -> str:
    """The task's own `data_source`, else `gymops/<verifier>` (scored by gymops' verl reward)."""
    own = example.task.get("data_source")
    if isinstance(own, str) and own:
        return own
    return f"gymops/{ctx.verifier or 'custom'}"


def split_tool_turns(
    prompt: list[rows.Message], completion: list[rows.Message], tool_turns: str
) -> tuple[list[rows.Message], list[rows.Message]]:
    """With `context`, everything up to the last tool output joins the prompt (see module doc)."""
    last_tool = max((i for i, m in enumerate(completion) if m["role"] == "tool"), default=-1)
    if tool_turns != "context" or last_tool < 0 or last_tool == len(completion) - 1:
        return prompt, completion
    return prompt + completion[: last_tool + 1], completion[last_tool + 1 :]


def _solution(task: dict[str, Any]) -> str:
    """One answer as text, what accuracy_reward parses: a list's first item, else the answer."""
    if isinstance(rows.ground_truth_value(task), list):
        return next(iter(rows.ground_truths(task)), "")
    return rows.ground_truth(task) or ""


# --- trl -------------------------------------------------------------------------------------


def trl_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """TRL conversational rows."""
    tools = _tools(example)
    if example.kind in ("sft", "kto"):
        prompt, completion = split_tool_turns(
            example.prompt, example.completion or [], ctx.tool_turns
        )
        row = {"prompt": prompt, "completion": completion, "tools": tools}
        if example.kind == "kto":
            row["label"] = example.label
        return row
    if example.kind == "dpo":
        return {
            "prompt": example.prompt,
            "chosen": example.chosen,
            "rejected": example.rejected,
            "tools": tools,
        }
    return {
        "prompt": example.prompt,
        "solution": _solution(example.task),
        "solutions": rows.ground_truths(example.task),
        "tools": tools,
        **_stats(example, ctx),
        "task": _task(example),
    }


# --- openrlhf --------------------------------------------------------------------------------


def openrlhf_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """OpenRLHF rows (message lists; train with --data.apply_chat_template)."""
    if example.kind == "sft":
        prompt, completion = split_tool_turns(
            example.prompt, example.completion or [], ctx.tool_turns
        )
        return {"input": prompt, "output": completion}
    if example.kind == "dpo":
        return {
            "prompt": example.prompt,
            "chosen": example.chosen,
            "rejected": example.rejected,
            "tools": _tools(example),
        }
    return {
        "input": example.prompt,
        "label": rows.ground_truth(example.task) or "",
        "datasource": data_source(example, ctx),
        "tools": _tools(example),
        **_stats(example, ctx),
        "task": _task(example),
    }


# --- verl ------------------------------------------------------------------------------------


def verl_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """verl RLHFDataset (rl) or MultiTurnSFTDataset (sft) rows."""
    if example.kind == "sft":
        return {
            "messages": example.prompt + (example.completion or []),
            "tools": example.tools or [],
        }
    ability = example.task.get("ability") or example.task.get("task_type") or ctx.verifier
    return {
        "data_source": data_source(example, ctx),
        "prompt": example.prompt,
        "ability": str(ability or "unknown"),
        "reward_model": {"style": "rule", "ground_truth": rows.ground_truth(example.task) or ""},
        "extra_info": {
            "split": ctx.split,
            "index": ctx.index,
            **_stats(example, ctx),
            "tools": _tools(example),
            "task": _task(example),
            "reward": _json(ctx.reward or {}),
        },
    }


# --- nemo-rl ---------------------------------------------------------------------------------


def agent_ref(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """The task's own agent_ref, else `<verifier>_simple_agent` (NeMo Gym's config naming)."""
    own = example.task.get("agent_ref")
    if isinstance(own, dict) and own.get("name"):
        return own
    return {"type": "responses_api_agents", "name": f"{ctx.verifier or 'gymops'}_simple_agent"}


def nemo_rl_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """NeMo-RL openai_format (sft), PreferenceDataset (dpo), NemoGymDataset (rl) rows."""
    if example.kind == "sft":
        completion = example.completion or []
        return {
            "messages": example.prompt + completion,
            "tools": example.tools or [],
            # NeMo-RL's per-message loss mask: only the response's assistant turns are trained
            "message_loss_mask": [0] * len(example.prompt)
            + [int(m["role"] == "assistant") for m in completion],
        }
    if example.kind == "dpo":
        return {
            "context": example.prompt,
            "completions": [
                {"rank": 0, "completion": example.chosen},
                {"rank": 1, "completion": example.rejected},
            ],
            "tools": _tools(example),
        }
    return {**example.task, "agent_ref": agent_ref(example, ctx)}


# --- nemo-gym --------------------------------------------------------------------------------


def nemo_gym_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """The rollout row (sft) or the task row (rl), unchanged."""
    source = example.rollout if example.kind == "sft" and example.rollout else example.task
    return dict(source)


EXPORTERS: dict[str, Callable[[Example, ExportContext], dict[str, Any]]] = {
    "trl": trl_row,
    "openrlhf": openrlhf_row,
    "verl": verl_row,
    "nemo-rl": nemo_rl_row,
    "nemo-gym": nemo_gym_row,
}

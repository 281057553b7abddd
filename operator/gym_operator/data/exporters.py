"""Exporters: an Example as the row a training framework loads unmodified.

The shapes follow research/formats.md (each checked against the framework's loader):
- trl: conversational prompt/completion (sft), prompt/chosen/rejected (dpo, explicit prompt),
  prompt/completion/label (kto), prompt + extra columns for reward functions (rl; `solution`
  holds the ground truth, as trl.rewards.accuracy_reward expects). `tools` is a JSON string.
- openrlhf: input/output (sft), prompt/chosen/rejected for `--data.prompt_key prompt` (dpo),
  input + label + datasource (rl). No KTO dataset exists in OpenRLHF 0.11.
- verl: RLHFDataset rows (rl: data_source, prompt, ability, reward_model.ground_truth,
  extra_info) and MultiTurnSFTDataset rows (sft: messages, tools). verl has no DPO/KTO trainer.
- nemo-rl: openai_format messages (sft), PreferenceDataset context/completions (dpo), NeMo Gym
  rows with agent_ref for NemoGymDataset (rl). No KTO in NeMo-RL.
- nemo-gym: the rollout rows themselves (sft) or the task rows (rl), NeMo Gym's own format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gym_operator.api.dataset import SUPPORTED_KINDS
from gym_operator.data import rows
from gym_operator.data.kinds import Example

# Columns an RL row already uses: a task field of the same name is not copied over them.
_TRL_RL_RESERVED = {"prompt", "solution", "task_index", "pass_rate", "mean_reward", "num_rollouts"}


class UnsupportedExport(ValueError):
    """The format has no dataset class for this kind."""


def check_supported(fmt: str, kind: str) -> None:
    """Raise UnsupportedExport naming the kinds the format does support."""
    if kind not in SUPPORTED_KINDS[fmt]:
        raise UnsupportedExport(
            f"spec.format {fmt!r} has no loader for spec.kind {kind!r};"
            f" {fmt} supports kinds {', '.join(SUPPORTED_KINDS[fmt])}"
        )


@dataclass(frozen=True)
class ExportContext:
    """What an exporter needs beyond the example: split, row index, file format, source info."""

    split: str
    index: int
    parquet: bool
    verifier: str | None = None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _scalar_or_json(value: Any, parquet: bool) -> Any:
    """Nested values as JSON text in parquet (Arrow cannot unify varying structs)."""
    if parquet and isinstance(value, dict | list):
        return _json(value)
    return value


def _without_empty_objects(value: Any) -> Any:
    """Empty objects as null: Arrow has no struct type without fields (e.g. `parameters: {}`).

    verl's MultiTurnSFTDataset reads `tools` as nested lists/structs, not JSON text, so a tool
    schema with no parameters must be written this way to survive parquet.
    """
    if isinstance(value, dict):
        return {k: _without_empty_objects(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [_without_empty_objects(v) for v in value]
    return value


def _stats(example: Example) -> dict[str, Any]:
    return {
        "task_index": example.task_index,
        "pass_rate": round(example.stats.pass_rate, 6),
        "mean_reward": round(example.stats.mean_reward, 6),
        "num_rollouts": example.stats.verified,
    }


def data_source(example: Example, ctx: ExportContext) -> str:
    """The task's own `data_source`, else `gymops/<verifier>` (scored by gymops' verl reward)."""
    own = example.task.get("data_source")
    if isinstance(own, str) and own:
        return own
    return f"gymops/{ctx.verifier or 'custom'}"


# --- trl -------------------------------------------------------------------------------------


def trl_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """TRL conversational rows."""
    row: dict[str, Any] = {"prompt": example.prompt}
    if example.kind in ("sft", "kto"):
        row["completion"] = example.completion
        if example.kind == "kto":
            row["label"] = example.label
    elif example.kind == "dpo":
        row["chosen"], row["rejected"] = example.chosen, example.rejected
    else:
        row["solution"] = rows.ground_truth(example.task)
        row.update(_stats(example))
        for name, value in rows.verifier_fields(example.task).items():
            if name not in _TRL_RL_RESERVED:
                row[name] = _scalar_or_json(value, ctx.parquet)
    if example.tools and example.kind != "rl":
        row["tools"] = _json(example.tools)
    return row


# --- openrlhf --------------------------------------------------------------------------------


def openrlhf_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """OpenRLHF rows (message lists; train with --data.apply_chat_template)."""
    if example.kind == "sft":
        return {"input": example.prompt, "output": example.completion}
    if example.kind == "dpo":
        return {"prompt": example.prompt, "chosen": example.chosen, "rejected": example.rejected}
    return {
        "input": example.prompt,
        "label": rows.ground_truth(example.task) or "",
        "datasource": data_source(example, ctx),
        **_stats(example),
    }


# --- verl ------------------------------------------------------------------------------------


def verl_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """verl RLHFDataset (rl) or MultiTurnSFTDataset (sft) rows."""
    if example.kind == "sft":
        row: dict[str, Any] = {"messages": example.prompt + (example.completion or [])}
        if example.tools:
            row["tools"] = _without_empty_objects(example.tools) if ctx.parquet else example.tools
        return row
    ability = example.task.get("ability") or example.task.get("task_type") or ctx.verifier
    return {
        "data_source": data_source(example, ctx),
        "prompt": example.prompt,
        "ability": str(ability or "unknown"),
        "reward_model": {"style": "rule", "ground_truth": rows.ground_truth(example.task) or ""},
        "extra_info": {
            "split": ctx.split,
            "index": ctx.index,
            **_stats(example),
            "task": _json(rows.verifier_fields(example.task)),
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
        row: dict[str, Any] = {"messages": example.prompt + (example.completion or [])}
        if example.tools:
            row["tools"] = _scalar_or_json(example.tools, ctx.parquet)
        return row
    if example.kind == "dpo":
        return {
            "context": example.prompt,
            "completions": [
                {"rank": 0, "completion": example.chosen},
                {"rank": 1, "completion": example.rejected},
            ],
        }
    row = {k: _scalar_or_json(v, ctx.parquet) for k, v in example.task.items()}
    row["agent_ref"] = _scalar_or_json(agent_ref(example, ctx), ctx.parquet)
    return row


# --- nemo-gym --------------------------------------------------------------------------------


def nemo_gym_row(example: Example, ctx: ExportContext) -> dict[str, Any]:
    """The rollout row (sft) or the task row (rl), unchanged."""
    source = example.rollout if example.kind == "sft" and example.rollout else example.task
    return {k: _scalar_or_json(v, ctx.parquet) for k, v in source.items()}


EXPORTERS: dict[str, Callable[[Example, ExportContext], dict[str, Any]]] = {
    "trl": trl_row,
    "openrlhf": openrlhf_row,
    "verl": verl_row,
    "nemo-rl": nemo_rl_row,
    "nemo-gym": nemo_gym_row,
}

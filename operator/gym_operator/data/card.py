"""The dataset card: README.md next to the data, with counts, histograms, samples and loading."""

from __future__ import annotations

import json
from typing import Any

from gym_operator.data.filters import FAILED, UNVERIFIED

REASONS: dict[str, str] = {
    FAILED: "model or verifier failure after bounded attempts (never a reward)",
    UNVERIFIED: "rollout row without a numeric reward",
    "no_identity": "rollout row without _ng_task_index/_ng_rollout_index",
    "digest_mismatch": "shard written under a different RolloutJob spec than _job.json",
    "bad_row": "part line that is not a JSON object",
    "pass_rate": "task pass rate outside filters.passRate",
    "below_min_reward": "reward below filters.minReward",
    "above_max_reward": "reward above filters.maxReward",
    "truncated": "response cut by the token limit",
    "empty": "response with no text and no tool call",
    "no_final_answer": "response that stops at a tool output, with no answer after it",
    "too_short": "response shorter than filters.minResponseChars",
    "too_long": "response longer than filters.maxResponseChars",
    "duplicate": "same response (filters.dedup) as an earlier one of the task",
    "not_selected": "kept response that was not the best of its task (sft.selection: best)",
    "unpaired": "kept response in no DPO pair (gap below minQualityDifference or pair cap)",
    "balance_cap": "row over filters.balance.maxPerGroup for its group (counted in rows)",
}

SAMPLE_CHARS = 600


def loading_snippet(fmt: str, kind: str, file_format: str, output: str = "<output>") -> str:
    """How to load the files (under `output`) in the target framework."""
    text = _snippet(fmt, kind, file_format)
    local = output.removeprefix("file://")
    return text.replace("<output dir>", local).replace("<output>", local)


def _snippet(fmt: str, kind: str, file_format: str) -> str:
    glob = {
        "train": f"<output>/train-*.{file_format}",
        "validation": f"<output>/validation-*.{file_format}",
    }
    loader = "json" if file_format == "jsonl" else "parquet"
    hf = f'load_dataset("{loader}", data_files={json.dumps(glob)})'
    if fmt == "trl":
        trainer = {
            "sft": "SFTTrainer",
            "dpo": "DPOTrainer",
            "rl": "GRPOTrainer",
            "kto": "KTOTrainer",
        }
        extra = ""
        if kind == "rl":
            extra = (
                "\n# every extra column (solution, solutions, pass_rate, task_id, task: the task's"
                " verifier fields\n# as JSON text) reaches your reward functions as a keyword list;"
                " trl.rewards.accuracy_reward reads `solution`."
            )
        return (
            f"```python\nfrom datasets import load_dataset\nfrom trl import {trainer[kind]}\n\n"
            f"ds = {hf}\ntrainer = {trainer[kind]}(model=..., train_dataset=ds['train'], ...)"
            f"{extra}\n```"
        )
    if fmt == "openrlhf":
        flags = {
            "sft": "--data.input_key input --data.output_key output --data.apply_chat_template",
            "dpo": "--data.prompt_key prompt --data.chosen_key chosen --data.rejected_key rejected"
            " --data.apply_chat_template",
            "rl": "--data.input_key input --data.label_key label --data.apply_chat_template",
        }[kind]
        source = "--data.prompt_dataset" if kind == "rl" else "--data.dataset"
        note = (
            "\n\nSeveral files: pass them comma-separated (each is loaded on its own; every file"
            " is typed by its own rows) or the output directory."
        )
        return f"```bash\n{source} <output dir>/train-00000.{file_format} {flags}\n```{note}"
    if fmt == "verl":
        if kind == "sft":
            return (
                "```bash\ndata.train_files=<output>/train-00000.parquet data.messages_key=messages"
                " data.tools_key=tools   # MultiTurnSFTDataset\n```"
            )
        return (
            "```bash\ndata.train_files=<output>/train-00000.parquet"
            " data.val_files=<output>/validation-00000.parquet data.prompt_key=prompt\n"
            "# data_source `gymops/<verifier>` is scored by the same verifier as the rollouts:\n"
            "reward.custom_reward_function.path=<site-packages>/gym_operator/verify/verl_reward.py"
            " reward.custom_reward_function.name=compute_score\n```"
        )
    if fmt == "nemo-rl":
        dataset = {
            "sft": "dataset_name: openai_format  # chat_key: messages, tool_key: tools\n"
            "    use_preserving_dataset: true  # tools as they are (Arrow would merge their keys)",
            "dpo": "dataset_name: PreferenceDataset",
            "rl": "dataset_name: NemoGymDataset  # processor: nemo_gym_data_processor, env_name:"
            " nemo_gym; agent_ref.name must match your NeMo Gym agent server",
        }[kind]
        path = f"<output>/train-00000.{file_format}"
        return f"```yaml\ndata:\n  train:\n    {dataset}\n    data_path: {path}\n```"
    return (
        "NeMo Gym rows, unchanged: feed them to `ng_collect_rollouts +input_jsonl_fpath=...` or"
        " NeMo-RL's `NemoGymDataset`."
    )


def _truncate(value: Any) -> Any:
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= SAMPLE_CHARS:
        return value
    return text[:SAMPLE_CHARS] + " ..."


def render_card(summary: dict[str, Any], spec: dict[str, Any], extras: dict[str, Any]) -> str:
    """The README.md text. `summary` is the _DATASET.json content; `extras` has samples etc."""
    counts, splits = summary["counts"], summary["splits"]
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split in ("train", "validation"):
        if splits.get(split):
            lines.append(f"  - split: {split}")
            lines.append(f"    path: {split}-*.{spec['output'].get('fileFormat', 'jsonl')}")
    lines += [
        "---",
        "",
        f"# {summary['name']}",
        "",
        f"A **{summary['kind']}** dataset in **{summary['format']}** format, built by gym-operator"
        " from verified rollouts.",
        "",
        "## Sources",
        "",
        "| source | spec digest | complete | shards | shards skipped (other digest) | bad tasks |",
        "|---|---|---|---|---|---|",
    ]
    for src in summary["sources"]:
        lines.append(
            f"| `{src['uri']}` | `{(src.get('digest') or '')[:16]}` | {src['complete']} |"
            f" {src['shards']} | {src['skippedShards'] or '-'} | {src['inputErrors']} |"
        )
    lines += [
        "",
        "complete: the RolloutJob wrote `_SUCCESS`. bad tasks: input rows the generator could not"
        " use (its errors files).",
    ]
    lines += ["", "## Counts", "", f"- rollouts read: **{counts['input']}**"]
    lines.append(f"- rows written: **{counts['kept']}**")
    if counts["dropped"]:
        lines += ["", "| dropped because | rollouts |", "|---|---|"]
    else:
        lines += ["", "Nothing was dropped."]
    for reason, n in sorted(counts["dropped"].items()):
        lines.append(f"| `{reason}`: {REASONS.get(reason, reason)} | {n} |")
    lines += ["", "## Splits", "", "| split | rows | files |", "|---|---|---|"]
    for split in ("train", "validation"):
        files = [f.rsplit("/", 1)[-1] for f in summary["files"] if f"/{split}-" in f]
        lines.append(f"| {split} | {splits.get(split, 0)} | {', '.join(files) or '-'} |")
    lines += _untyped_note(extras.get("untyped_files") or [])
    lines += [
        "",
        "Split by prompt: a prompt is never in both splits (seeded hash of the prompt as the"
        " model sees it: its chat messages, normalised, and its tools).",
        "",
        "## Rewards",
        "",
        f"Verified rollouts: {extras['reward_total']}, mean reward {extras['reward_mean']:.4f}.",
        "",
        "![reward histogram](reward_histogram.png)",
        "",
        _bins_table(extras["reward_bins"], extras["reward_range"]),
        "",
        "## Pass rate per task",
        "",
        f"Tasks with a verified rollout: {extras['tasks']}; a rollout passes at reward >="
        f" filters.passRate.passThreshold, else the job's reward.passThreshold.",
        "",
        "![pass-rate histogram](pass_rate_histogram.png)",
        "",
        _bins_table(extras["pass_bins"], (0.0, 1.0)),
        "",
        "## How to load it",
        "",
        loading_snippet(
            summary["format"],
            summary["kind"],
            spec["output"].get("fileFormat", "jsonl"),
            summary["output"],
        ),
        "",
        "## Sample rows",
        "",
    ]
    for sample in extras["samples"]:
        shown = {k: _truncate(v) for k, v in sample.items()}
        lines += ["```json", json.dumps(shown, ensure_ascii=False, indent=2), "```", ""]
    lines += ["## Spec", "", "```json", json.dumps(spec, indent=2, sort_keys=True), "```", ""]
    return "\n".join(lines)


def _untyped_note(untyped: list[tuple[str, str]]) -> list[str]:
    """Files whose own rows leave a list empty that other files fill (JSONL only)."""
    if not untyped:
        return []
    lines = [
        "",
        "These JSONL files have no row that fills a list other files fill (too few such rows"
        " to give every file one), so a loader that types each file on its own (verl's"
        " RLHFDataset, OpenRLHF given a list of files) would type that list as empty: load all"
        " files of a split in one `load_dataset` call, or use `output.fileFormat: parquet`.",
        "",
    ]
    lines += [f"- `{uri.rsplit('/', 1)[-1]}`: `{path}`" for uri, path in untyped]
    return lines


def _bins_table(bins: list[int], bounds: tuple[float, float]) -> str:
    low, high = bounds
    width = (high - low) / max(len(bins), 1)
    rows = ["| bin | count |", "|---|---|"]
    for i, count in enumerate(bins):
        close = "]" if i == len(bins) - 1 else ")"
        rows.append(f"| [{low + i * width:.3g}, {low + (i + 1) * width:.3g}{close} | {count} |")
    return "\n".join(rows)

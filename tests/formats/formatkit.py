"""Helpers for format tests: an offline ChatML tokenizer and every exporter's output on disk.

The tokenizer is byte-level (256 byte tokens + ChatML specials) built with `tokenizers`, so
nothing is downloaded; its chat template renders tools and tool calls, like real ChatML ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gym_operator.api.dataset import SUPPORTED_FILE_FORMATS, SUPPORTED_KINDS, DatasetSpec
from gym_operator.data.builder import DatasetSummary, build_dataset
from gym_operator.data.mixed import mixed_rollouts
from gym_operator.data.synthetic import rollout_row, write_rollouts
from gym_operator.storage.store import Storage

# Every (format, kind, fileFormat) a Dataset accepts (verl SFT is parquet only).
SUPPORTED = [
    (fmt, kind, ff)
    for fmt, kinds in SUPPORTED_KINDS.items()
    for kind in kinds
    for ff in SUPPORTED_FILE_FORMATS[fmt]
    if (fmt, kind, ff) != ("verl", "sft", "jsonl")
]
# Realistic data: 5,000 tasks x 4 repeats = 20,000 rollouts (gym_operator.data.mixed).
TRL_COLUMNS = {
    "sft": ["prompt", "completion"],
    "dpo": ["prompt", "chosen", "rejected"],
    "rl": ["prompt"],
    "kto": ["prompt", "completion", "label"],
}
"""The conversational columns TRL's chat templating reads, by dataset kind."""
REALISTIC_TASKS = 5000
SMALL_FILES = 300  # rowsPerFile: dozens of files, some with no tool call at all

CHATML = (
    "{%- if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{%- for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "{%- if message.get('tool_calls') %}{%- for call in message['tool_calls'] %}"
    "<tool_call>{{ call['function']['name'] }} {{ call['function']['arguments'] }}</tool_call>"
    "{%- endfor %}{%- endif %}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TOOLS = [
    {
        "type": "function",
        "name": "calc",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}},
    }
]
REWARDS = [1.0, 0.0, 0.5, 1.0]


def make_tokenizer(directory: Path) -> Any:
    """Build, save to `directory` and return the tokenizer (a PreTrainedTokenizerFast)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(sorted(alphabet))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(directory)
    return tokenizer


def rollouts(tasks: int = 8) -> list[dict[str, Any]]:
    """Math-like rollouts: a system prompt, tools on even tasks, a tool call in some answers."""
    rows = []
    for task in range(tasks):
        prompt: Any = [
            {"role": "system", "content": "Answer with a number."},
            {"role": "user", "content": f"What is {task} + {task}?"},
        ]
        if task % 3 == 2:
            prompt = f"What is {task} + {task}?"  # string input
        for rep, reward in enumerate(REWARDS):
            calls = None
            if task % 2 == 0 and rep == 0:
                calls = [
                    {"name": "calc", "arguments": f'{{"expr": "{task}+{task}"}}', "call_id": "c1"}
                ]
            answer = task * 2 if reward == 1.0 else task * 2 + rep
            row = rollout_row(
                task,
                rep,
                f"The answer is {answer}.",
                reward,
                prompt=prompt,
                tool_calls=calls,
                expected_answer=str(task * 2),
                task_type="math",
            )
            if task % 2 == 0:
                row["responses_create_params"]["tools"] = TOOLS
            rows.append(row)
    return rows


def export_all(root: Path) -> dict[tuple[str, str, str], DatasetSummary]:
    """Build every (format, kind, fileFormat) the exporters support from the same rollouts."""
    storage = Storage()
    source = f"file://{root}/rollouts"
    write_rollouts(
        storage, source, rollouts(), num_repeats=4, spec={"verifier": {"builtin": "math"}}
    )
    combos = (
        [("trl", k, f) for k in ("sft", "dpo", "rl", "kto") for f in ("jsonl", "parquet")]
        + [("openrlhf", k, f) for k in ("sft", "dpo", "rl") for f in ("jsonl", "parquet")]
        + [("verl", "rl", "parquet"), ("verl", "rl", "jsonl"), ("verl", "sft", "parquet")]
        + [("nemo-rl", k, "jsonl") for k in ("sft", "dpo", "rl")]
        + [("nemo-gym", "rl", "jsonl"), ("nemo-gym", "sft", "jsonl")]
    )
    out = {}
    for fmt, kind, file_format in combos:
        spec = DatasetSpec.model_validate(
            {
                "sources": [{"uri": source}],
                "kind": kind,
                "format": fmt,
                "sft": {"selection": "all"} if kind == "sft" else None,
                "pairing": {"maxPairsPerPrompt": 2} if kind == "dpo" else None,
                "split": {"validationFraction": 0.25, "seed": 5},
                "output": {
                    "uri": f"file://{root}/{fmt}-{kind}-{file_format}",
                    "fileFormat": file_format,
                },
            }
        )
        out[(fmt, kind, file_format)] = build_dataset(
            spec,
            name=f"{fmt}-{kind}",
            source_uris=[source],
            output_uri=spec.output.uri,
            storage=storage,
        )
    return out


def write_realistic(root: Path, tasks: int = REALISTIC_TASKS) -> str:
    """Commit the realistic rollouts as a finished RolloutJob (2 shards); its URI."""
    source = f"file://{root}/rollouts"
    spec = {"verifier": {"builtin": "math"}, "reward": {"mode": "continuous"}}
    rows = list(mixed_rollouts(tasks, repeats=4, seed=1))
    write_rollouts(Storage(), source, rows, num_shards=2, num_repeats=4, spec=spec)
    return source


def build_realistic(
    root: Path, source: str, fmt: str, kind: str, file_format: str, rows_per_file: int
) -> DatasetSummary:
    """One export of the realistic rollouts (all responses kept for sft, two pairs per task)."""
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source}],
            "kind": kind,
            "format": fmt,
            "filters": {"passRate": {"min": 0.0, "max": 1.0, "passThreshold": 0.8}},
            "sft": {"selection": "all"} if kind == "sft" else None,
            "pairing": {"maxPairsPerPrompt": 2} if kind == "dpo" else None,
            "split": {"validationFraction": 0.1, "seed": 3},
            "output": {
                "uri": f"file://{root}/{fmt}-{kind}-{file_format}-{rows_per_file}",
                "fileFormat": file_format,
                "rowsPerFile": rows_per_file,
            },
        }
    )
    return build_dataset(
        spec,
        name=f"{fmt}-{kind}",
        source_uris=[source],
        output_uri=spec.output.uri,
        storage=Storage(),
    )


def files(summary: DatasetSummary, split: str = "train") -> list[str]:
    """Local paths of one split's files."""
    return [f.removeprefix("file://") for f in summary.files if f"/{split}-" in f]

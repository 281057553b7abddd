"""Every supported export of 20,000 realistic rollouts loads with `datasets`, as frameworks do.

The rollouts (gym_operator.data.mixed) mix plain, tool-call, multi-turn and system-prompt tasks;
the first tenth of the tasks have no optional key at all and the last tenth have them all, so
optional keys are missing from the first rows and files and present in the last ones. Each export
is built with many small files (some with no tool call at all) and with one large file (past the
10 MB block from which `datasets` types JSON lines). Loaded both ways frameworks do it: one
`load_dataset` over all files (TRL, OpenRLHF given a glob or directory, NeMo-RL), and one per file
then `concatenate_datasets` (verl's RLHFDataset, OpenRLHF given a comma-separated list).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from formatkit import SMALL_FILES, SUPPORTED, TRL_COLUMNS, files

pytestmark = pytest.mark.formats

# NeMo Gym rows are free-form and read line by line (NemoGymDataset, NeMo Gym's own tools), as
# are NeMo-RL SFT rows with tools (OpenAIFormatDataset with use_preserving_dataset: true); verl's
# MultiTurnSFTDataset reads its parquet files with pandas, one by one.
NOT_DATASETS = {
    ("nemo-rl", "rl"),
    ("nemo-gym", "rl"),
    ("nemo-gym", "sft"),
    ("nemo-rl", "sft"),
    ("verl", "sft"),
}
TYPED = [c for c in SUPPORTED if (c[0], c[1]) not in NOT_DATASETS]
LARGE = 1_000_000
# One large file matters for JSON lines (typed from its first 10 MB block), not for parquet.
SIZES = [(*c, SMALL_FILES) for c in TYPED] + [(*c, LARGE) for c in TYPED if c[2] == "jsonl"]


def load(paths: list[str], file_format: str) -> Any:
    from datasets import load_dataset

    builder = "json" if file_format == "jsonl" else "parquet"
    return load_dataset(builder, data_files={"train": paths}, split="train")


def message_columns(features: Any) -> dict[str, Any]:
    """Columns (also nested in lists/structs) that hold chat messages, by name."""
    from datasets import List

    found: dict[str, Any] = {}

    def visit(name: str, feature: Any) -> None:
        if isinstance(feature, List) and isinstance(feature.feature, dict):
            if "role" in feature.feature:
                found[name] = feature.feature
                return
            for key, sub in feature.feature.items():
                visit(f"{name}[].{key}", sub)
        elif isinstance(feature, dict):
            for key, sub in feature.items():
                visit(f"{name}.{key}", sub)

    for name, feature in features.items():
        visit(name, feature)
    return found


def assert_typed_messages(dataset: Any) -> None:
    """Every message column is typed, never Json: tool calls a list of structs (arguments as
    strings), or of nulls only where no row of the split has a tool call in that column."""
    from datasets import List, Value

    columns = message_columns(dataset.features)
    assert columns, dataset.features
    assert {"prompt", "input", "messages", "context"} & set(columns)
    typed = 0
    for name, message in columns.items():
        assert set(message) == {"role", "content", "tool_calls", "tool_call_id"}, name
        calls = message["tool_calls"]
        assert isinstance(calls, List), (name, calls)
        if isinstance(calls.feature, dict):
            assert calls.feature["function"]["arguments"] == Value("string"), name
            typed += 1
        else:
            assert calls.feature == Value("null"), (name, calls)
            assert not any(
                calls_in(row, name) for row in dataset.select_columns(name.split("[")[0])
            )
    assert typed  # the realistic data has tool calls in at least one message column


def calls_in(row: dict, name: str) -> bool:
    """Whether any message at column path `name` (e.g. `completions[].completion`) calls a tool."""
    head, _, rest = name.partition("[].")
    value = row[head]
    items = [v[rest] for v in value] if rest else [value]
    return any(m["tool_calls"] for messages in items for m in messages)


@pytest.mark.parametrize(("fmt", "kind", "file_format", "rows_per_file"), SIZES)
def test_one_load_over_all_files(realistic, fmt, kind, file_format, rows_per_file) -> None:
    summary = realistic(fmt, kind, file_format, rows_per_file)
    paths = files(summary)
    assert (len(paths) > 5) == (rows_per_file == SMALL_FILES)
    dataset = load(paths, file_format)
    assert len(dataset) == summary.splits.train
    assert_typed_messages(dataset)
    assert summary.extras["untyped_files"] == []


@pytest.mark.parametrize(("fmt", "kind", "file_format"), TYPED)
def test_each_file_typed_on_its_own(realistic, fmt, kind, file_format) -> None:
    """verl's RLHFDataset and OpenRLHF (a list of files) type every file, then concatenate."""
    from datasets import concatenate_datasets

    summary = realistic(fmt, kind, file_format, SMALL_FILES)
    parts = [load([path], file_format) for path in files(summary)]
    dataset = concatenate_datasets(parts)
    assert len(dataset) == summary.splits.train
    assert_typed_messages(dataset)


def test_verl_sft_parquet_reads_with_pandas_file_by_file(realistic) -> None:
    """As MultiTurnSFTDataset reads it; `tools` stay nested (a file's own Arrow type)."""
    import pandas as pd

    summary = realistic("verl", "sft", "parquet", SMALL_FILES)
    frame = pd.concat([pd.read_parquet(p) for p in files(summary)])
    assert len(frame) == summary.splits.train
    with_tools = [t for t in frame["tools"] if len(t)]
    assert with_tools and all(tool["function"]["name"] for t in with_tools for tool in t)


def realistic_rows(summary) -> list[dict]:
    return [json.loads(line) for path in files(summary) for line in open(path)]


@pytest.mark.parametrize("kind", ["rl", "sft"])
def test_nemo_gym_rows_read_line_by_line(realistic, kind) -> None:
    """NemoGymDataset keeps each line verbatim and json.loads it in nemo_gym_data_processor."""
    for fmt in ("nemo-rl", "nemo-gym") if kind == "rl" else ("nemo-gym",):
        summary = realistic(fmt, kind, "jsonl", SMALL_FILES)
        rows = realistic_rows(summary)
        assert len(rows) == summary.splits.train
        for row in rows:
            assert row["responses_create_params"]["input"]
            if fmt == "nemo-rl":
                assert row["agent_ref"]["name"]


def test_nemo_rl_openai_format_rows_with_a_message_loss_mask(realistic) -> None:
    """Read as OpenAIFormatDataset(use_preserving_dataset=True) reads them (one json.loads per
    line), checked as it and NeMo-RL's message_loss_mask validation check them: the last message
    is the assistant's, one binary mask entry per message, only assistant turns selected."""
    summary = realistic("nemo-rl", "sft", "jsonl", SMALL_FILES)
    rows = realistic_rows(summary)
    assert len(rows) == summary.splits.train
    masked_tool_outputs = 0
    for row in rows:
        messages, mask = row["messages"], row["message_loss_mask"]
        assert messages[-1]["role"] == "assistant" and mask[-1] == 1
        assert len(mask) == len(messages) and set(mask) <= {0, 1}
        assert all(m["role"] == "assistant" for m, keep in zip(messages, mask, strict=True) if keep)
        masked_tool_outputs += sum(m["role"] == "tool" for m in messages)
        assert isinstance(row["tools"], list)
    assert masked_tool_outputs


def test_nemo_rl_preference_rows(realistic) -> None:
    """What PreferenceDataset asserts, on every row: exactly two completions, distinct ranks."""
    dpo = load(files(realistic("nemo-rl", "dpo", "jsonl", SMALL_FILES)), "jsonl")
    for row in dpo:
        ranks = [c["rank"] for c in row["completions"]]
        assert sorted(ranks) == [0, 1]
        assert isinstance(json.loads(row["tools"]), list)


def sample(dataset: Any, every: int = 7) -> list[dict]:
    """The first and last rows and every `every`-th row between."""
    n = len(dataset)
    return [dataset[i] for i in sorted({0, n - 1, *range(0, n, every)})]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
@pytest.mark.parametrize("kind", ["sft", "dpo", "rl", "kto"])
def test_trl_templates_realistic_rows(realistic, tokenizer, kind, file_format) -> None:
    """TRL's own chat templating on the loaded rows (first, last and every 7th)."""
    from trl.data_utils import apply_chat_template, is_conversational

    dataset = load(files(realistic("trl", kind, file_format, SMALL_FILES)), file_format)
    keys = TRL_COLUMNS[kind]
    with_tools = with_calls = 0
    for example in sample(dataset):
        assert is_conversational(example)
        tools = json.loads(example["tools"])  # as TRL's trainers do with a string
        text = apply_chat_template({k: example[k] for k in keys}, tokenizer, tools=tools or None)
        assert text["prompt"].endswith("<|im_start|>assistant\n")
        with_tools += bool(tools)
        with_calls += "<tool_call>" in "".join(v for v in text.values() if isinstance(v, str))
    assert with_tools and with_calls

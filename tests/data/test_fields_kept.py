"""No field is lost between a rollout and its exported row: per format, every field the format
has a place for arrives unchanged (docs/integration.md, "What each format keeps").

Built from realistic rollouts (gym_operator.data.mixed: plain, tool-call, multi-turn and
system-prompt tasks, optional fields present and absent), each row is traced back to its rollout
(the task's question and the answer's `(try N)` / tool-call id name them) and compared field by
field with what the rollout holds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from datakit import read_rows

from gym_operator.api.dataset import DatasetSpec
from gym_operator.data import rows, schemas
from gym_operator.data.builder import build_dataset
from gym_operator.data.mixed import mixed_rollouts
from gym_operator.data.synthetic import write_rollouts
from gym_operator.storage.store import Storage

TASKS = 300
JOB = {"verifier": {"builtin": "math"}, "reward": {"mode": "continuous", "passThreshold": 0.8}}
COMBOS = [
    ("trl", "sft", "jsonl"),
    ("trl", "kto", "parquet"),
    ("trl", "dpo", "jsonl"),
    ("trl", "rl", "parquet"),
    ("openrlhf", "sft", "parquet"),
    ("openrlhf", "dpo", "jsonl"),
    ("openrlhf", "rl", "jsonl"),
    ("verl", "sft", "parquet"),
    ("verl", "rl", "jsonl"),
    ("nemo-rl", "sft", "jsonl"),
    ("nemo-rl", "dpo", "jsonl"),
    ("nemo-rl", "rl", "jsonl"),
    ("nemo-gym", "sft", "jsonl"),
    ("nemo-gym", "rl", "jsonl"),
]
QUESTION = re.compile(r"What is (\d+) \+ \d+\?")
TRY = re.compile(r"\(try (\d)\)")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    root = tmp_path_factory.mktemp("kept")
    uri = f"file://{root}/rollouts"
    rollouts = list(mixed_rollouts(TASKS, repeats=4, seed=2))
    write_rollouts(Storage(), uri, rollouts, num_shards=3, num_repeats=4, spec=JOB)
    return uri, {(r["_ng_task_index"], r["_ng_rollout_index"]): r for r in rollouts}


def build(source_uri: str, fmt: str, kind: str, file_format: str, out: Path) -> list[dict]:
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source_uri}],
            "kind": kind,
            "format": fmt,
            "sft": {"selection": "all"} if kind == "sft" else None,
            "split": {"validationFraction": 0.2, "seed": 1},
            "output": {"uri": f"file://{out}", "fileFormat": file_format, "rowsPerFile": 97},
        }
    )
    summary = build_dataset(
        spec, name="kept", source_uris=[source_uri], output_uri=spec.output.uri, storage=Storage()
    )
    written = read_rows(summary)
    return written["train"] + written["validation"]


def uniform(messages: list[dict]) -> list[dict]:
    """Messages as every export writes them (the same four keys on each)."""
    return schemas.conform({"m": messages}, schemas.pa.schema([("m", schemas.MESSAGES)]))["m"]


def task_of(messages: list[dict]) -> int:
    user = [m["content"] for m in messages if m["role"] == "user"]
    return int(QUESTION.search(user[-1]).group(1))


def rollout_of(task: int, completion: list[dict], by_id: dict) -> dict[str, Any]:
    """The rollout whose answer this is: `(try N)` in its text, else its tool-call ids `cN.`."""
    text = "".join(m["content"] for m in completion)
    found = TRY.search(text)
    if found:
        return by_id[(task, int(found.group(1)))]
    call_id = next(c["id"] for m in completion for c in m["tool_calls"])
    return by_id[(task, int(call_id[1]))]


def full(rollout: dict) -> list[dict]:
    return uniform(rows.prompt_messages(rollout) + rows.completion_messages(rollout))


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def tools_json(rollout: dict) -> str:
    return json.dumps(rows.tools_of(rollout) or [], ensure_ascii=False)


def check_rl_identity(out: dict, task: dict, source_uri: str) -> None:
    index = task["_ng_task_index"]
    assert (out["source"], out["task_index"]) == (source_uri, index)
    assert out["task_id"] == f"{source_uri}#{index}"
    assert json.loads(out["task"]) == rows.verifier_fields(task)


def check(fmt: str, kind: str, out: dict, by_id: dict, source_uri: str) -> None:
    """Compare one exported row with the rollout(s) it came from."""
    if fmt == "nemo-gym" and kind == "sft":
        assert out == by_id[(out["_ng_task_index"], out["_ng_rollout_index"])]
        return
    if fmt == "nemo-gym":
        assert out == rows.task_fields(by_id[(task_of(rows.prompt_messages(out)), 0)])
        return
    if fmt == "nemo-rl" and kind == "rl":
        original = by_id[(task_of(rows.prompt_messages(out)), 0)]
        agent = original.get("agent_ref") or {
            "type": "responses_api_agents",
            "name": "math_simple_agent",
        }
        assert out == {**rows.task_fields(original), "agent_ref": agent}
        return
    messages_key = {"trl": "prompt", "openrlhf": "input"}.get(fmt, "messages")
    if kind == "dpo":
        messages_key = {"trl": "prompt", "openrlhf": "prompt", "nemo-rl": "context"}[fmt]
    elif fmt == "verl" and kind == "rl":
        messages_key = "prompt"
    t = task_of(out[messages_key])
    first = by_id[(t, 0)]
    if kind == "rl":
        check_rl(fmt, out, first, source_uri)
    elif kind == "dpo":
        check_dpo(fmt, out, t, by_id)
    else:
        check_sft(fmt, kind, out, t, by_id)


def check_sft(fmt: str, kind: str, out: dict, t: int, by_id: dict) -> None:
    if fmt in ("verl", "nemo-rl"):
        conversation = out["messages"]
        prompt_len = len(rows.prompt_messages(by_id[(t, 0)]))
        rollout = rollout_of(t, conversation[prompt_len:], by_id)
    else:
        prompt, completion = (
            (out["prompt"], out["completion"]) if fmt == "trl" else (out["input"], out["output"])
        )
        conversation = prompt + completion
        rollout = rollout_of(t, completion, by_id)
    assert conversation == full(rollout)
    if fmt == "trl":
        assert out["tools"] == tools_json(rollout)
    if fmt == "verl":
        # parquet: each file's tools share one Arrow struct, so a key a tool lacks reads as null
        expected = schemas.without_empty_objects(rows.tools_of(rollout) or [])
        assert without_nulls(out["tools"]) == without_nulls(expected)
    if fmt == "nemo-rl":
        assert out["tools"] == (rows.tools_of(rollout) or [])
    if kind == "kto":
        assert out["label"] == (rollout["reward"] >= 1.0)


def check_dpo(fmt: str, out: dict, t: int, by_id: dict) -> None:
    if fmt == "nemo-rl":
        ranked = sorted(out["completions"], key=lambda c: c["rank"])
        chosen, rejected = ranked[0]["completion"], ranked[1]["completion"]
        prompt = out["context"]
    else:
        chosen, rejected, prompt = out["chosen"], out["rejected"], out["prompt"]
    best, worst = rollout_of(t, chosen, by_id), rollout_of(t, rejected, by_id)
    assert prompt == uniform(rows.prompt_messages(best))
    assert chosen == uniform(rows.completion_messages(best))
    assert rejected == uniform(rows.completion_messages(worst))
    assert best["reward"] > worst["reward"]
    assert out["tools"] == tools_json(best)


def check_rl(fmt: str, out: dict, task: dict, source_uri: str) -> None:
    prompt = uniform(rows.prompt_messages(task))
    answer = rows.ground_truth(task) or ""
    if fmt == "trl":
        assert out["prompt"] == prompt and out["tools"] == tools_json(task)
        assert out["solutions"] == rows.ground_truths(task)
        check_rl_identity(out, task, source_uri)
    elif fmt == "openrlhf":
        assert out["input"] == prompt and out["label"] == answer
        assert out["tools"] == tools_json(task)
        check_rl_identity(out, task, source_uri)
    else:
        info = out["extra_info"]
        assert out["prompt"] == prompt and out["reward_model"]["ground_truth"] == answer
        assert info["tools"] == tools_json(task)
        assert json.loads(info["reward"]) == JOB["reward"]
        assert out["data_source"] == task.get("data_source", "gymops/math")
        check_rl_identity(info, task, source_uri)


@pytest.mark.parametrize(("fmt", "kind", "file_format"), COMBOS)
def test_every_field_the_format_keeps_arrives(source, tmp_path, fmt, kind, file_format) -> None:
    source_uri, by_id = source
    written = build(source_uri, fmt, kind, file_format, tmp_path / "out")
    assert len(written) > TASKS // 2
    for out in written:
        check(fmt, kind, out, by_id, source_uri.rstrip("/"))

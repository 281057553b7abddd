"""Realistic, heterogeneous rollouts for format tests and benchmarks (deterministic per seed).

Tasks come in three blocks so that every optional key is absent and present in every position:
the first block has no optional key at all (so the first rows and first files of an export have
none), the middle block mixes every shape, the last block has them all (so the last rows do).
Shapes: plain string prompts, content-part prompts, system prompts (as `instructions` or a
system message), multi-turn prompts (with earlier tool calls), tools offered (with and without
parameters), responses with tool calls and tool outputs, reasoning items, non-string tool
arguments, truncated and empty responses, binary and continuous rewards, reward components, list
ground truths and free task fields (`data_source`, `ability`, `agent_ref`, `metadata`, `options`).
Every repeat of a task has a distinct answer, so dedup keeps them all; some tool-using answers end
with the tool call itself.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from gym_operator.data.synthetic import rollout_row

CALC = {
    "type": "function",
    "name": "calc",
    "description": "Evaluate an arithmetic expression.",
    "parameters": {
        "type": "object",
        "properties": {"expr": {"type": "string"}},
        "required": ["expr"],
    },
}
NOW = {"type": "function", "name": "now", "description": "The time.", "parameters": {}}
LOOKUP = {
    "type": "function",
    "name": "lookup",
    "parameters": {
        "type": "object",
        "properties": {"key": {"type": "integer"}, "deep": {"type": "object", "properties": {}}},
    },
}
SYSTEM = "You are a careful assistant. Answer with a number."


def _prompt(t: int, rng: random.Random, rich: bool) -> tuple[Any, dict[str, Any]]:
    """(input, extra responses_create_params) of task t."""
    question = f"What is {t} + {t % 97}?"
    if not rich:
        return question, {}
    shape = rng.randrange(5)
    params: dict[str, Any] = {}
    if shape == 0:
        prompt: Any = question
    elif shape == 1:
        prompt = [{"role": "user", "content": [{"type": "input_text", "text": question}]}]
    elif shape == 2:
        prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    elif shape == 3:
        prompt = [{"role": "user", "content": question}]
        params["instructions"] = SYSTEM
    else:
        prompt = [
            {"role": "user", "content": f"Remember {t}."},
            {
                "type": "function_call",
                "name": "calc",
                "arguments": '{"expr": "1+1"}',
                "call_id": "p1",
            },
            {"type": "function_call_output", "call_id": "p1", "output": "2"},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": question},
        ]
    return prompt, params


class _Always(random.Random):
    """A random source whose every draw says "yes": every optional field is present."""

    def random(self) -> float:
        return 0.0


def _task_fields(t: int, rng: random.Random, rich: bool, full: bool) -> dict[str, Any]:
    answer = str(t + t % 97)
    if not rich:
        return {"expected_answer": answer}
    if full:
        rng = _Always()
    fields: dict[str, Any] = {"expected_answer": answer}
    if rng.random() < 0.2:
        fields["expected_answer"] = [answer, f"{answer}.0"]
    if rng.random() < 0.3:
        fields["data_source"] = rng.choice(["openai/gsm8k", "lighteval/MATH"])
    if rng.random() < 0.3:
        fields["ability"] = "math"
    if rng.random() < 0.3:
        fields["task_type"] = rng.choice(["math", "arith"])
    if rng.random() < 0.2:
        fields["metadata"] = {
            "difficulty": rng.randrange(5),
            "tags": ["a", "b"][: rng.randrange(3)],
        }
    if rng.random() < 0.2:
        fields["options"] = [{"A": "1"}, {"B": "2"}]
    if rng.random() < 0.1:
        fields["agent_ref"] = {"type": "responses_api_agents", "name": "my_agent"}
    if rng.random() < 0.2:
        fields["id"] = f"task-{t}"
    return fields


def _calls(t: int, rep: int, rng: random.Random) -> list[dict[str, Any]]:
    """Output items of a tool-using answer: calls, their outputs (and sometimes reasoning)."""
    items: list[dict[str, Any]] = []
    if rng.random() < 0.3:
        items.append({"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]})
    for n in range(1 + rng.randrange(2)):
        args: Any = {"expr": f"{t}+{t % 97}"} if rng.random() < 0.3 else f'{{"expr": "{t}+{n}"}}'
        items.append(
            {"type": "function_call", "name": "calc", "arguments": args, "call_id": f"c{rep}{n}"}
        )
        items.append(
            {"type": "function_call_output", "call_id": f"c{rep}{n}", "output": str(t + n)}
        )
    return items


def _rollout(t: int, rep: int, rng: random.Random, level: int) -> dict[str, Any]:
    rich, tools, full = level > 0, level == 2 or (level == 1 and t % 5 < 2), level == 2
    prompt, params = _prompt(t, random.Random(-t - 1), rich)
    continuous = rich and t % 3 == 0
    reward = rng.choice([0.0, 0.8, 0.9, 1.0]) if continuous else float(rep % 2 == 0)
    right = reward >= 0.8
    text = f"The answer is {t + t % 97 if right else t + rep + 1000} (try {rep})."
    truncated = rich and rng.random() < 0.03
    if rich and rng.random() < 0.02:
        text = ""
    fields = _task_fields(t, random.Random(t), rich, full)
    row = rollout_row(t, rep, text, reward, prompt=prompt, truncated=truncated, **fields)
    row["responses_create_params"].update(params)
    if tools:
        row["responses_create_params"]["tools"] = [CALC, NOW, LOOKUP][: 1 + t % 3]
        if rep % 2 == 0 or full:
            row["response"]["output"][:0] = _calls(t, rep, rng)
        if rep == 3 and t % 2:
            # the answer is a tool call itself (the loop stopped there): its last output and
            # the final message go
            row["response"]["output"] = _calls(t, rep, rng)[:-1]
    if full or (rich and rng.random() < 0.3):
        row["reward_components"] = {"correct": float(right), "format": 1.0}
    return row


def mixed_rollouts(tasks: int, repeats: int = 4, seed: int = 0) -> Iterator[dict[str, Any]]:
    """tasks x repeats rollout rows: the first 10% of tasks plain, the last 10% all-optional."""
    plain_end, rich_start = tasks // 10, tasks - tasks // 10
    for t in range(tasks):
        rng = random.Random(seed * 1_000_003 + t)
        level = 0 if t < plain_end else 2 if t >= rich_start else 1
        for rep in range(repeats):
            yield _rollout(t, rep, rng, level)

"""Every rollout of a `gymops run` job is scored by NeMo Gym's own, unmodified resource servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ngkit import NemoGym, ask, gymops_run, output_of, write_job, write_tasks

OPTIONS = [{"A": "Karyotyping"}, {"B": "PCR"}, {"C": "Southern blotting"}, {"D": "FISH"}]
MCQA = "Which test finds a known mutation? A: Karyotyping B: PCR C: Southern blotting D: FISH"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": ""}},
        "required": ["city"],
        "additionalProperties": False,
    },
}

# server -> [(task row, the reward NeMo Gym's server must give the double's answer)]
CASES: dict[str, list[tuple[dict[str, Any], float]]] = {
    "string_match": [
        (
            ask(
                "Capital of France? [say: \\boxed{Paris}]",
                expected_answer="Paris",
                extraction_mode="boxed",
            ),
            1.0,
        ),
        (
            ask(
                "Capital of France? [say: \\boxed{Lyon}]",
                expected_answer="Paris",
                extraction_mode="boxed",
            ),
            0.0,
        ),
        (ask("Speed? [say: Final answer: 80 km/h]", expected_answer="80 km/h"), 1.0),
    ],
    "mcqa": [
        (
            ask(
                f"{MCQA} [say: \\boxed{{B}}]",
                options=OPTIONS,
                expected_answer="B",
                grading_mode="strict_single_letter_boxed",
            ),
            1.0,
        ),
        (
            ask(
                f"{MCQA} [say: \\boxed{{D}}]",
                options=OPTIONS,
                expected_answer="B",
                grading_mode="strict_single_letter_boxed",
            ),
            0.0,
        ),
    ],
    "math_with_judge": [
        (
            ask(
                "What is 2 + 2? [say: So \\boxed{4}.]",
                question="What is 2 + 2?",
                expected_answer="4",
            ),
            1.0,
        ),
        (
            ask(
                "What is 1/2 + 1/4? [say: \\boxed{\\frac{3}{4}}]",
                question="1/2 + 1/4?",
                expected_answer="0.75",
            ),
            1.0,
        ),
        (
            ask("What is 2 + 3? [say: \\boxed{6}]", question="What is 2 + 3?", expected_answer="5"),
            0.0,
        ),
    ],
    "example_single_tool_call": [
        (
            {
                "responses_create_params": {
                    "input": [
                        {"role": "developer", "content": "You are a helpful assistant."},
                        {
                            "role": "user",
                            "content": 'Cold in sf? [call: get_weather {"city": "SF"}] [say: Yes.]',
                        },
                    ],
                    "tools": [WEATHER_TOOL],
                }
            },
            1.0,
        ),
        (
            {
                "responses_create_params": {
                    "input": [{"role": "user", "content": "Cold in sf? [say: No idea.]"}],
                    "tools": [WEATHER_TOOL],
                }
            },
            0.0,
        ),
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("server", sorted(CASES))
def test_every_rollout_is_scored(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str, server: str, api: str
) -> None:
    cases = CASES[server]
    tasks = write_tasks(tmp_path / "tasks.jsonl", [row for row, _ in cases])
    job = write_job(
        tmp_path / "job.yaml",
        tasks=tasks,
        model_url=model_url,
        verifier_url=nemo_gym.urls[server],
        policy={"baseURL": model_url, "model": "double", "api": api},
    )
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    out = output_of(job)
    assert out.failures == [], out.failures[:2]
    assert len(out.rollouts) == 2 * len(cases)
    for row in out.rollouts:
        expected = cases[row["_ng_task_index"]][1]
        assert row["reward"] == expected, (row["_ng_task_index"], row["response"]["output"])
        assert row["response"]["object"] == "response"
    assert (tmp_path / "out" / "_SUCCESS").exists()


@pytest.mark.slow
async def test_the_row_keeps_what_the_verifier_measured(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    row = ask(
        "What is 2 + 2? [say: It is \\boxed{4}.]", question="What is 2 + 2?", expected_answer="4"
    )
    job = write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", [row]),
        model_url=model_url,
        verifier_url=nemo_gym.urls["math_with_judge"],
        sampling={"numRepeats": 1, "concurrency": 1},
    )
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    (rollout,) = output_of(job).rollouts
    assert rollout["reward"] == 1.0
    assert rollout["extracted_answer"] == "4"
    assert rollout["library_reward"] == 1.0
    assert rollout["judge_evaluations"] is None
    assert rollout["mask_sample"] is False

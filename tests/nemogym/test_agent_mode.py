"""Agent mode: each rollout is one POST /run on NeMo Gym's simple_agent, over 2 shards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from ngkit import NemoGym, ask, gymops_run, output_of, write_job, write_tasks

TASKS = [
    ask(f"Capital? [say: \\boxed{{{city}}}]", expected_answer="Paris", extraction_mode="boxed")
    for city in ("Paris", "Lyon", "Paris", "Nice", "Paris")
]


@pytest.mark.slow
def test_agent_rollouts_are_sharded_scored_and_written_once(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    job = write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", TASKS),
        model_url=model_url,
        verifier_url=nemo_gym.urls["string_match"],
        agent={"url": nemo_gym.urls["string_match_simple_agent"]},
        parallelism=2,
        sampling={"numRepeats": 2, "concurrency": 3},
    )
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    out = output_of(job)
    assert out.failures == []
    slots = Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert slots == {(t, r): 1 for t in range(len(TASKS)) for r in range(2)}
    for row in out.rollouts:
        expected = (
            1.0
            if "{Paris}" in row["responses_create_params"]["input"][0]["content"][0]["text"]
            else 0.0
        )
        assert row["reward"] == expected
        assert row["extracted_answer"] in ("Paris", "Lyon", "Nice")
    again = gymops_run(job)  # a rerun of a finished job samples nothing again
    assert again.returncode == 0
    assert len(output_of(job).rollouts) == len(out.rollouts)


@pytest.mark.slow
def test_an_agent_row_has_the_fields_of_the_agents_own_answer(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    """What NeMo Gym's rollout collection writes for a row is the agent's /run answer."""
    task = TASKS[0]
    request = urllib.request.Request(
        nemo_gym.urls["string_match_simple_agent"] + "/run",
        data=json.dumps(task).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        theirs = json.load(resp)
    job = write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", [task]),
        model_url=model_url,
        verifier_url=nemo_gym.urls["string_match"],
        agent={"url": nemo_gym.urls["string_match_simple_agent"]},
        sampling={"numRepeats": 1, "concurrency": 1},
    )
    assert gymops_run(job).returncode == 0
    (ours,) = output_of(job).rollouts
    assert set(theirs) - {"responses_create_params"} <= set(ours)
    for field in ("reward", "expected_answer", "extracted_answer", "mask_sample", "failure_kind"):
        assert ours[field] == theirs[field], field
    assert ours["response"]["output"][0]["content"][0]["text"] == "\\boxed{Paris}"
    assert [i["type"] for i in ours["response"]["output"]] == [
        i["type"] for i in theirs["response"]["output"]
    ]
    assert (ours["_ng_task_index"], ours["_ng_rollout_index"]) == (0, 0)


@pytest.mark.slow
def test_a_killed_agent_job_resumes_with_every_rollout_once(
    tmp_path: Path, nemo_gym: NemoGym, model_url: str
) -> None:
    tasks = [
        ask(
            f"Capital {i}? [wait: 0.3] [say: \\boxed{{Paris}}]",
            expected_answer="Paris",
            extraction_mode="boxed",
        )
        for i in range(12)
    ]
    job = write_job(
        tmp_path / "job.yaml",
        tasks=write_tasks(tmp_path / "tasks.jsonl", tasks),
        model_url=model_url,
        verifier_url=nemo_gym.urls["string_match"],
        agent={"url": nemo_gym.urls["string_match_simple_agent"]},
        parallelism=2,
        sampling={"numRepeats": 2, "concurrency": 2},
        output={"uri": f"file://{tmp_path}/out", "partRows": 2, "partSeconds": 0.2},
    )
    code = "import sys; from gym_operator import cli; sys.exit(cli.main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", str(job), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(output_of(job).rollouts) < 4:
            assert proc.poll() is None, "the job ended before it could be killed"
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    partial = len(output_of(job).rollouts)
    assert 4 <= partial < 24
    done = gymops_run(job)
    assert done.returncode == 0, done.stdout + done.stderr
    out = output_of(job)
    slots = Counter((r["_ng_task_index"], r["_ng_rollout_index"]) for r in out.rollouts)
    assert slots == {(t, r): 1 for t in range(12) for r in range(2)}
    assert all(r["reward"] == 1.0 for r in out.rollouts) and out.failures == []

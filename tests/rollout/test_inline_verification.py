"""In local mode cheap built-in verifiers run in the gymops process, the others in the verifier
child over its pipes; both score exactly as the verifier server does over HTTP: same rewards,
components, details and failure rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rolloutkit import make_job, math_task, write_tasks

from gym_operator.rollout.local_verifier import runs_inline
from gym_operator.rollout.output import read_committed
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.loopback import run_in_thread
from gym_operator.testing.stub_model import StubModel
from gym_operator.verify.server import VerifierSettings, start_server

TASKS = 6


def _tasks(path: Path) -> Path:
    rows: list[dict[str, Any]] = []
    for i in range(TASKS):
        row = math_task(i)
        row["options"] = [str(2 * i + 1), "7", "8", "9"]
        row["pattern"] = r"#### (\d+)"
        row["instructions"] = [
            {"type": "include_keywords", "keywords": ["sum"]},
            {"type": "max_words", "n": 3 + i},
        ]
        rows.append(row)
    del rows[4]["expected_answer"]  # unscorable for the checks that read it
    rows[5]["instructions"] = [{"type": "no_such_instruction"}]
    return write_tasks(path, rows)


CASES = [
    ("regex", {"patternField": "pattern", "answerField": "expected_answer"}),
    ("exact_match", {"mode": "contains"}),
    ("mcqa", {"extraction": "last"}),
    ("instruction_following", {}),
    ("math", {}),  # in the child, over its pipes
]


def _outcomes(storage: Storage, uri: str) -> dict[tuple[int, int], Any]:
    out = read_committed(storage, parse_uri(uri))
    scored = {
        (r["_ng_task_index"], r["_ng_rollout_index"]): (
            r["reward"],
            r.get("reward_components"),
            r.get("verifier_details"),
        )
        for r in out.rollouts
    }
    failed = {
        (f["_ng_task_index"], f["_ng_rollout_index"]): (
            f["failure"]["class"],
            f["failure"]["message"],
        )
        for f in out.failures
    }
    assert not scored.keys() & failed.keys()
    return {**scored, **failed}


@pytest.mark.parametrize(("builtin", "config"), CASES, ids=[c[0] for c in CASES])
async def test_inline_scores_equal_the_servers(
    tmp_path: Path, stub: tuple[StubModel, str], builtin: str, config: dict[str, Any]
) -> None:
    _, url = stub
    tasks = str(_tasks(tmp_path / "tasks.jsonl"))
    storage = Storage()
    outcomes = []
    settings = VerifierSettings(builtin=builtin, config=config, workers=1)
    with run_in_thread(lambda: start_server(settings), name="verifier") as server_url:
        for name, verifier in (
            ("inline", {"builtin": builtin, "config": config}),
            ("server", {"url": server_url}),
        ):
            output = f"file://{tmp_path}/{name}"
            job = make_job(
                tasks_uri=tasks,
                output_uri=output,
                base_url=url,
                verifier=verifier,
                sampling={"numRepeats": 2, "concurrency": 4},
                output={"uri": output},
            )
            result = await run_job(job.spec, shards=[0])
            assert result.success
            outcomes.append(_outcomes(storage, output))
    inline, served = outcomes
    assert inline.keys() == served.keys()
    for slot, outcome in inline.items():
        if outcome[0] == "verifier_unscorable":  # the server's message is the 422 answer's
            assert served[slot][0] == outcome[0] and outcome[1][:200] in served[slot][1], slot
        else:
            assert served[slot] == outcome, slot
    assert len(inline) == TASKS * 2
    classes = {v[0] if isinstance(v[0], str) else "scored" for v in inline.values()}
    assert classes == {"scored", "verifier_unscorable"}


@pytest.mark.parametrize("builtin", ["math", "code_execution", "llm_judge"])
def test_heavy_or_hostile_checks_stay_out_of_process(builtin: str) -> None:
    assert not runs_inline(builtin)


@pytest.mark.parametrize("builtin", ["exact_match", "regex", "mcqa", "json_schema"])
def test_cheap_checks_run_in_process(builtin: str) -> None:
    assert runs_inline(builtin)

"""Every filter on hand-made rollouts: which responses survive and the count per reason."""

from __future__ import annotations

from datakit import Build

from gym_operator.data.synthetic import rollout_row as row


def sft_all(build: Build, rollouts, filters, **kw):
    return build(rollouts, kind="sft", sft={"selection": "all"}, filters=filters, **kw)


def texts(rows) -> list[str]:
    return [r["completion"][0]["content"] for r in rows["train"]]


def test_reward_bounds_keep_only_rewards_inside(build: Build) -> None:
    rollouts = [row(0, i, f"r{i}", reward) for i, reward in enumerate([0.1, 0.5, 0.8, 1.0])]
    summary, rows = sft_all(build, rollouts, {"minReward": 0.5, "maxReward": 0.9, "dedup": "none"})
    assert texts(rows) == ["r1", "r2"]
    assert summary.counts.dropped == {"below_min_reward": 1, "above_max_reward": 1}
    assert summary.counts.input == 4 and summary.counts.kept == 2


def test_truncated_and_empty_responses_are_dropped(build: Build) -> None:
    rollouts = [
        row(0, 0, "full answer", 1.0),
        row(0, 1, "cut off mid", 1.0, truncated=True),
        row(0, 2, "", 1.0),
        row(0, 3, "   ", 1.0),
    ]
    summary, rows = sft_all(build, rollouts, {"dropTruncated": True, "dropEmpty": True})
    assert texts(rows) == ["full answer"]
    assert summary.counts.dropped == {"truncated": 1, "empty": 2}


def test_tool_call_without_text_is_not_empty(build: Build) -> None:
    call = {"name": "calc", "arguments": '{"x": 1}', "call_id": "c1"}
    rollouts = [row(0, 0, "", 1.0, tool_calls=[call])]
    summary, rows = sft_all(build, rollouts, {"dropEmpty": True}, num_repeats=1)
    assert summary.counts.kept == 1 and summary.counts.dropped == {}


def test_length_bounds_in_characters(build: Build) -> None:
    rollouts = [row(0, i, "x" * n, 1.0) for i, n in enumerate([2, 5, 10, 11])]
    summary, rows = sft_all(
        build, rollouts, {"minResponseChars": 5, "maxResponseChars": 10, "dedup": "none"}
    )
    assert texts(rows) == ["x" * 5, "x" * 10]
    assert summary.counts.dropped == {"too_short": 1, "too_long": 1}


def test_exact_dedup_within_a_task_only(build: Build) -> None:
    rollouts = [
        row(0, 0, "Same answer", 1.0),
        row(0, 1, "Same answer", 1.0),
        row(0, 2, "same  answer!", 1.0),
        row(1, 0, "Same answer", 1.0),
    ]
    summary, rows = sft_all(build, rollouts, {"dedup": "exact"}, num_repeats=3)
    assert sorted(texts(rows)) == ["Same answer", "Same answer", "same  answer!"]
    assert summary.counts.dropped == {"duplicate": 1}


def test_normalised_dedup_ignores_case_space_and_punctuation(build: Build) -> None:
    rollouts = [
        row(0, 0, "The answer is 4.", 1.0),
        row(0, 1, "the   ANSWER is 4", 1.0),
        row(0, 2, "The answer is 5.", 1.0),
    ]
    summary, rows = sft_all(build, rollouts, {"dedup": "normalized"}, num_repeats=3)
    assert texts(rows) == ["The answer is 4.", "The answer is 5."]
    assert summary.counts.dropped == {"duplicate": 1}


def test_pass_rate_window_drops_whole_tasks(build: Build) -> None:
    rewards = {0: [1, 1, 1, 1], 1: [1, 0, 0, 0], 2: [0, 0, 0, 0], 3: [1, 1, 0, 0]}
    rollouts = [
        row(t, i, f"t{t}r{i}", float(r)) for t, rs in rewards.items() for i, r in enumerate(rs)
    ]
    summary, rows = build(
        rollouts, kind="rl", filters={"passRate": {"min": 0.0, "max": 1.0, "exclusive": True}}
    )
    assert sorted(r["task_index"] for r in rows["train"]) == [1, 3]
    assert sorted(r["pass_rate"] for r in rows["train"]) == [0.25, 0.5]
    assert summary.counts.dropped == {"pass_rate": 8}


def test_pass_rate_uses_the_jobs_pass_threshold(build: Build) -> None:
    rollouts = [row(0, i, f"r{i}", r) for i, r in enumerate([0.9, 0.7, 0.2, 0.1])]
    _, rows = build(
        rollouts,
        kind="rl",
        job_spec={"reward": {"mode": "continuous", "passThreshold": 0.5}},
        filters={"passRate": {"min": 0.5, "max": 0.5}},
    )
    assert [r["pass_rate"] for r in rows["train"]] == [0.5]


def test_balance_caps_rows_per_group(build: Build) -> None:
    rollouts = [
        row(t, 0, f"t{t}", 1.0, task_type=kind)
        for t, kind in enumerate(["math", "math", "math", "code", "code", "logic"])
    ]
    summary, rows = build(
        rollouts,
        kind="sft",
        num_repeats=1,
        filters={"dedup": "none", "balance": {"by": "task_type", "maxPerGroup": 2}},
    )
    assert [r["completion"][0]["content"] for r in rows["train"]] == ["t0", "t1", "t3", "t4", "t5"]
    assert summary.counts.dropped == {"balance_cap": 1}


def test_failures_unverified_and_anonymous_rollouts_are_never_kept(
    build: Build, tmp_path, storage
) -> None:
    from gym_operator.data.synthetic import commit_rows, finish_job, start_job

    source = f"file://{tmp_path}/rollouts"
    manifests = start_job(storage, source, num_shards=1, num_repeats=4)
    anonymous = row(0, 2, "who am I", 1.0)
    del anonymous["_ng_task_index"]
    failure = {"_ng_task_index": 0, "_ng_rollout_index": 3, "failure": {"class": "timeout"}}
    manifests[0] = commit_rows(
        storage,
        source,
        manifests[0],
        [row(0, 0, "good", 1.0), row(0, 1, "no reward", None), anonymous],
        failures=[failure],
    )
    finish_job(storage, source, manifests)
    summary, rows = sft_all(build, [], {"dedup": "none"})
    assert texts(rows) == ["good"]
    assert summary.counts.input == 4
    assert summary.counts.dropped == {"failed": 1, "unverified": 1, "no_identity": 1}


def test_continuous_rewards_that_vary_are_informative_with_a_pass_threshold(build: Build) -> None:
    """Rewards 1.0/0.8/1.0/0.8 (job threshold 1.0) read as half passed; 0.9/0.85 as all failed
    until `passRate.passThreshold` moves the bar: then both tasks are kept for GRPO."""
    rollouts = [row(0, i, f"a{i}", r) for i, r in enumerate([1.0, 0.8, 1.0, 0.8])]
    rollouts += [row(1, i, f"b{i}", r) for i, r in enumerate([0.9, 0.85, 0.9, 0.2])]
    window = {"min": 0.0, "max": 1.0, "exclusive": True}
    job = {"reward": {"mode": "continuous"}}
    summary, rows = build(rollouts, kind="rl", job_spec=job, filters={"passRate": window})
    assert [r["task_index"] for r in rows["train"]] == [0]
    assert summary.counts.dropped == {"pass_rate": 4}


def test_pass_threshold_overrides_the_jobs(build: Build) -> None:
    rollouts = [row(0, i, f"a{i}", r) for i, r in enumerate([1.0, 0.8, 1.0, 0.8])]
    rollouts += [row(1, i, f"b{i}", r) for i, r in enumerate([0.9, 0.85, 0.9, 0.2])]
    window = {"min": 0.0, "max": 1.0, "exclusive": True, "passThreshold": 0.85}
    job = {"reward": {"mode": "continuous"}}
    _, rows = build(rollouts, kind="rl", job_spec=job, filters={"passRate": window})
    assert [(r["task_index"], r["pass_rate"]) for r in rows["train"]] == [(0, 0.5), (1, 0.75)]


def test_response_stopping_at_a_tool_output_has_no_final_answer(build: Build) -> None:
    """NeMo-RL asserts an SFT conversation ends with the assistant; such a response never does."""
    call = {"name": "calc", "arguments": "{}", "call_id": "c1"}
    stopped = row(0, 0, "", 1.0, tool_calls=[call])
    stopped["response"]["output"].append(
        {"type": "function_call_output", "call_id": "c1", "output": "2"}
    )
    answered = row(0, 1, "It is 2.", 1.0)
    summary, rows = sft_all(build, [stopped, answered], {"dropEmpty": True}, num_repeats=2)
    assert texts(rows) == ["It is 2."]
    assert summary.counts.dropped == {"no_final_answer": 1}

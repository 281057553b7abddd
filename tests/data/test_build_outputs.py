"""What a build leaves in the output prefix: sharded files, splits, _DATASET.json, the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from datakit import Build, msg, read_rows

from gym_operator.api.dataset import Dataset, DatasetStatus
from gym_operator.cli import main as cli_main
from gym_operator.data.local import run_dataset
from gym_operator.data.sources import UnresolvedSource
from gym_operator.data.splits import split_of
from gym_operator.data.synthetic import rollout_row as row
from gym_operator.data.synthetic import write_rollouts
from gym_operator.storage.store import Storage


def many(tasks: int, repeats: int = 2) -> list[dict]:
    return [row(t, r, f"t{t}r{r}", float(r % 2)) for t in range(tasks) for r in range(repeats)]


def test_rows_per_file_shards_each_split(build: Build, tmp_path: Path) -> None:
    summary, rows = build(
        many(25, 1),
        kind="sft",
        num_repeats=1,
        output={"rowsPerFile": 10},
        split={"validationFraction": 0.2, "seed": 3},
    )
    names = [f.rsplit("/", 1)[-1] for f in summary.files]
    train, val = summary.splits.train, summary.splits.validation
    assert train + val == 25 and val > 0
    assert names == [f"train-{i:05d}.jsonl" for i in range(-(-train // 10))] + [
        f"validation-{i:05d}.jsonl" for i in range(-(-val // 10))
    ]
    assert [len(rows["train"]), len(rows["validation"])] == [train, val]


def test_split_is_by_prompt_seeded_and_reproducible(build: Build) -> None:
    summary, rows = build(many(200), kind="kto", split={"validationFraction": 0.25, "seed": 9})
    val_prompts = {json.dumps(r["prompt"]) for r in rows["validation"]}
    train_prompts = {json.dumps(r["prompt"]) for r in rows["train"]}
    assert not val_prompts & train_prompts
    assert 30 <= len(val_prompts) <= 70  # 25% of 200 tasks, binomial spread
    assert split_of("p", 9, 0.25) == split_of("p", 9, 0.25)
    moved = sum(split_of(str(i), 9, 0.5) != split_of(str(i), 10, 0.5) for i in range(200))
    assert moved > 50  # another seed gives another split


def test_result_file_is_the_status_the_controller_copies(build: Build, tmp_path: Path) -> None:
    summary, _ = build(many(10), kind="dpo", split={"validationFraction": 0.3, "seed": 1})
    result = json.loads((tmp_path / "out" / "_DATASET.json").read_text())
    status = DatasetStatus.model_validate(
        {k: result[k] for k in ("counts", "splits", "files", "card")}
    )
    assert status.counts.input == 20 and status.counts.kept == 10
    assert status.counts.dropped == {}
    assert status.splits.train + status.splits.validation == 10
    assert status.card == f"file://{tmp_path}/out/README.md"
    assert all(Path(f.removeprefix("file://")).exists() for f in status.files)
    assert result["sources"][0]["complete"] is True and result["kind"] == "dpo"


def test_card_has_counts_histograms_samples_and_loading(build: Build, tmp_path: Path) -> None:
    rollouts = many(6, 4) + [row(9, 0, "", 1.0)]
    build(rollouts, kind="sft", filters={"dropEmpty": True}, split={"validationFraction": 0.3})
    out = tmp_path / "out"
    text = (out / "README.md").read_text()
    for needle in (
        "## Sources",
        "rollouts read: **25**",
        "| `empty`:",
        "| `not_selected`:",
        "![reward histogram](reward_histogram.png)",
        "![pass-rate histogram](pass_rate_histogram.png)",
        "## How to load it",
        "SFTTrainer",
        "## Sample rows",
        '"kind": "sft"',
        "| train |",
    ):
        assert needle in text, needle
    for image in ("reward_histogram.png", "pass_rate_histogram.png"):
        assert (out / image).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_rebuild_removes_files_it_no_longer_writes(build: Build, tmp_path: Path) -> None:
    build(many(30, 1), kind="sft", num_repeats=1, output={"rowsPerFile": 5})
    assert (tmp_path / "out" / "train-00005.jsonl").exists()
    summary, _ = build(many(30, 1), kind="sft", num_repeats=1, output={"rowsPerFile": 100})
    assert sorted(p.name for p in (tmp_path / "out").glob("train-*")) == ["train-00000.jsonl"]
    assert summary.counts.kept == 30


def dataset_yaml(tmp_path: Path, sources: list[dict], **extra) -> Path:
    body = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "math-dpo"},
        "spec": {
            "sources": sources,
            "kind": "dpo",
            "format": "trl",
            "output": {"uri": f"file://{tmp_path}/ds"},
            **extra,
        },
    }
    path = tmp_path / "dataset.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_builder_pod_entrypoint_uses_resolved_source_uris(tmp_path: Path) -> None:
    write_rollouts(Storage(), f"file://{tmp_path}/rj", many(4))
    spec = dataset_yaml(tmp_path, [{"rolloutJobRef": "math-run1"}])
    code = cli_main(["build-dataset", "--spec", str(spec), "--source-uri", f"file://{tmp_path}/rj"])
    assert code == 0
    result = json.loads((tmp_path / "ds" / "_DATASET.json").read_text())
    assert result["counts"]["kept"] == 4 and result["name"] == "math-dpo"


def test_builder_pod_entrypoint_refuses_unsupported_combinations(tmp_path: Path) -> None:
    spec = dataset_yaml(tmp_path, [{"uri": f"file://{tmp_path}/rj"}], format="verl")
    termination = tmp_path / "termination-log"
    termination.touch()
    args = ["build-dataset", "--spec", str(spec), "--termination-log", str(termination)]
    assert cli_main(args) == 2
    assert not (tmp_path / "ds").exists()
    # What `kubectl describe pod` (and the Dataset's status.message) shows.
    assert "format verl has no loader for this kind" in termination.read_text()


def test_local_mode_resolves_rollout_job_refs_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rollouts(Storage(), f"file://{tmp_path}/rj", many(4))
    dataset = Dataset.model_validate(
        yaml.safe_load(dataset_yaml(tmp_path, [{"rolloutJobRef": "math-run1"}]).read_text())
    )
    with pytest.raises(UnresolvedSource, match="GYMOPS_SOURCE_MATH_RUN1"):
        run_dataset(dataset, None, None)
    monkeypatch.setenv("GYMOPS_SOURCE_MATH_RUN1", f"file://{tmp_path}/rj")
    summary = run_dataset(dataset, f"file://{tmp_path}/elsewhere", None)
    assert summary.counts.kept == 4
    assert read_rows(summary)["train"][0]["chosen"][0]["content"].endswith("r1")
    assert (tmp_path / "elsewhere" / "README.md").exists()


def test_builds_from_s3_into_s3(s3_bucket: str) -> None:
    import boto3

    from gym_operator.api.dataset import DatasetSpec
    from gym_operator.data.builder import build_dataset

    storage = Storage()
    source, output = f"s3://{s3_bucket}/rollouts/run1", f"s3://{s3_bucket}/datasets/dpo"
    write_rollouts(storage, source, many(6, 4), num_shards=2)
    spec = DatasetSpec.model_validate(
        {
            "sources": [{"uri": source}],
            "kind": "dpo",
            "format": "trl",
            "output": {"uri": output, "fileFormat": "parquet"},
        }
    )
    summary = build_dataset(
        spec, name="s3", source_uris=[source], output_uri=output, storage=storage
    )
    assert summary.counts.kept == 6
    s3 = boto3.client("s3")
    keys = {
        o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="datasets/dpo/")["Contents"]
    }
    assert keys == {
        "datasets/dpo/train-00000.parquet",
        "datasets/dpo/README.md",
        "datasets/dpo/_DATASET.json",
        "datasets/dpo/reward_histogram.png",
        "datasets/dpo/pass_rate_histogram.png",
    }
    result = json.loads(
        s3.get_object(Bucket=s3_bucket, Key="datasets/dpo/_DATASET.json")["Body"].read()
    )
    assert result["files"] == [f"{output}/train-00000.parquet"]
    assert result["card"] == f"{output}/README.md"


def test_parquet_keeps_a_tool_call_that_only_a_later_chunk_has(build: Build) -> None:
    """The schema is explicit: a file whose first Arrow chunk has no tool call still has them."""
    from gym_operator.data.writer import CHUNK_ROWS

    call = {"name": "calc", "arguments": "{}", "call_id": "c9"}
    last = CHUNK_ROWS + 1
    rollouts = [row(t, 0, f"t{t}", 1.0) for t in range(last)]
    rollouts.append(row(last, 0, "tl", 1.0, tool_calls=[call]))
    summary, rows = build(rollouts, kind="sft", num_repeats=1, output={"fileFormat": "parquet"})
    assert len(summary.files) == 1
    completions = [r["completion"][0] for r in rows["train"]]
    assert completions[0] == msg("assistant", "t0")
    assert completions[-1]["tool_calls"] == [
        {"id": "c9", "type": "function", "function": {"name": "calc", "arguments": "{}"}}
    ]


def test_every_jsonl_file_starts_with_rows_that_fill_every_list(build: Build) -> None:
    """Loaders type JSONL from a file's first rows (verl types each file on its own): every file
    must show a tool call there, even when all tool calls came in the last file's rows."""
    call = {"name": "calc", "arguments": "{}", "call_id": "c9"}
    rollouts = [row(t, 0, f"t{t}", 1.0) for t in range(12)]
    rollouts += [row(t, 0, f"tool{t}", 1.0, tool_calls=[call]) for t in range(12, 15)]
    summary, rows = build(rollouts, kind="sft", num_repeats=1, output={"rowsPerFile": 5})
    texts = sorted(r["completion"][0]["content"] for r in rows["train"])
    assert texts == sorted([f"t{t}" for t in range(12)] + ["tool12", "tool13", "tool14"])
    files = _per_file(summary)
    assert [len(f) for f in files] == [5, 5, 5]
    # the rows at the top of each file: one that fills each list (prompt, completion, tool_calls)
    assert all(any(r["completion"][0]["tool_calls"] for r in f[:2]) for f in files)


def test_a_list_too_rare_for_every_file_is_reported(build: Build) -> None:
    call = {"name": "calc", "arguments": "{}", "call_id": "c9"}
    rollouts = [row(t, 0, f"t{t}", 1.0) for t in range(12)]
    rollouts.append(row(12, 0, "tool", 1.0, tool_calls=[call]))
    summary, _ = build(rollouts, kind="sft", num_repeats=1, output={"rowsPerFile": 5})
    lacking = summary.extras["untyped_files"]
    assert [(uri.rsplit("/", 1)[-1], path) for uri, path in lacking] == [
        ("train-00000.jsonl", "completion[].tool_calls"),
        ("train-00001.jsonl", "completion[].tool_calls"),
    ]
    card = Path(summary.card.removeprefix("file://")).read_text()
    assert "train-00000.jsonl" in card and "load all files of a split" in card


def _per_file(summary) -> list[list[dict]]:
    return [
        [json.loads(line) for line in Path(f.removeprefix("file://")).read_text().splitlines()]
        for f in summary.files
    ]


def test_gymops_run_builds_a_dataset_yaml(tmp_path: Path) -> None:
    write_rollouts(Storage(), f"file://{tmp_path}/rj", many(4))
    spec = dataset_yaml(tmp_path, [{"uri": f"file://{tmp_path}/rj"}])
    assert cli_main(["run", str(spec), "--output", f"file://{tmp_path}/via-run"]) == 0
    result = json.loads((tmp_path / "via-run" / "_DATASET.json").read_text())
    assert result["counts"] == {"input": 8, "kept": 4, "dropped": {}}

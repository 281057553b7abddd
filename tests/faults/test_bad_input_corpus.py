"""A task file with every kind of bad row: each lands in the errors file with its line and reason,
every good row is done, and the counts are exact (input and output on S3)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
from faultkit import TinyVerifier, job_body, read_output, serve, task_row

from gym_operator.api import parse_resource
from gym_operator.rollout.runner import run_job
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import parse_uri
from gym_operator.testing.stub_model import StubModel, start

CORPUS = Path(__file__).parent / "corpus" / "tasks_bad.jsonl"
REPEATS = 2
# 1-based line -> what the reason must say
BAD_LINES = {
    4: "malformed JSON",
    5: "not a JSON object but list",
    6: "no responses_create_params",
    7: "responses_create_params is not an object",
    8: "responses_create_params.input is empty",
    9: "not UTF-8",
    12: "not a JSON object but str",
    13: "not a JSON object but NoneType",
    14: "lone surrogate",
    15: "nested too deeply",
    16: "not a JSON object but float",
    19: "malformed JSON",
    20: "Invalid control character",
    21: "above maxRowBytes",
}
GOOD_INDEXES = [0, 1, 10, 16, 21]  # BOM, CRLF, duplicate id, CRLF, last line without newline


def corpus_bytes() -> bytes:
    """The committed corpus plus a 10 MB row and a last line without a newline."""
    big = json.dumps(task_row(20)).encode()[:-1] + b', "pad": "' + b"x" * (10 << 20) + b'"}'
    return CORPUS.read_bytes() + big + b"\n" + json.dumps(task_row(21)).encode()


async def test_every_bad_row_is_located_and_every_good_row_done(s3_bucket: str) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="in/tasks.jsonl", Body=corpus_bytes())
    output = f"s3://{s3_bucket}/out/"
    stub = StubModel()
    stub_runner, base_url = await start(stub)
    verifier = TinyVerifier()
    ver_runner, ver_url = await serve(verifier.app())
    body = job_body(f"s3://{s3_bucket}/in/tasks.jsonl", output, base_url, ver_url)
    try:
        first = await run_job(parse_resource(body).spec, shards=[0])
        again = await run_job(parse_resource(body).spec, shards=[0])
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()

    out = read_output(Storage(), parse_uri(output))
    errors = {row["line"]: row["reason"] for row in out.errors}
    assert sorted(errors) == sorted(BAD_LINES)
    for line, expected in BAD_LINES.items():
        assert expected in errors[line], (line, errors[line])
    assert all(row["_ng_task_index"] == row["line"] - 1 for row in out.errors)
    assert sorted(out.rollout_keys()) == [(t, r) for t in GOOD_INDEXES for r in range(REPEATS)]
    assert out.failures == []
    assert [r["reward"] for r in sorted(out.rollouts, key=lambda r: r["_ng_rollout_index"])] == [
        1.0
    ] * len(GOOD_INDEXES) + [0.0] * len(GOOD_INDEXES)
    ids = sorted(r["id"] for r in out.rollouts if r["_ng_rollout_index"] == 0)
    assert ids == ["t0", "t0", "t1", "t16", "t21"]
    assert first.success and again.success
    shard = first.shards[0]
    assert (shard.completed, shard.failed, shard.input_errors) == (10, 0, len(BAD_LINES))
    assert again.shards[0].completed == 10 and stub.requests == 10
    (manifest,) = out.manifests
    assert (manifest.completed, manifest.input_errors, manifest.failed) == (10, len(BAD_LINES), 0)
    assert manifest.finished and manifest.expected_rollouts == len(GOOD_INDEXES) * REPEATS


SHAPES = {  # task rows whose input the model client could not turn into a request
    1: ({"input": 42}, "input is int, not text or a list"),
    2: ({"input": [42]}, "input[0] is int, not an object"),
    3: ({"input": [{"role": "user", "content": 7}]}, "input[0].content is int, not text or a list"),
    4: ({"input": [{"role": "user", "content": "hi"}, "x"]}, "input[1] is str, not an object"),
}


async def test_input_of_the_wrong_shape_is_a_located_bad_row(tmp_path: Path) -> None:
    lines = [json.dumps(task_row(0))]
    lines += [json.dumps({"responses_create_params": p}) for p, _ in SHAPES.values()]
    lines.append(json.dumps(task_row(5)))
    (tmp_path / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    stub_runner, base_url = await start(StubModel())
    ver_runner, ver_url = await serve(TinyVerifier().app())
    body = job_body(str(tmp_path / "tasks.jsonl"), str(tmp_path / "out"), base_url, ver_url)
    try:
        result = await run_job(parse_resource(body).spec, shards=[0])
    finally:
        await ver_runner.cleanup()
        await stub_runner.cleanup()
    assert result.success
    out = read_output(Storage(), parse_uri(str(tmp_path / "out")))
    assert {row["line"]: row["reason"] for row in out.errors} == {
        index + 1: f"responses_create_params.{reason}" for index, (_, reason) in SHAPES.items()
    }
    assert sorted(out.rollout_keys()) == [(0, 0), (0, 1), (5, 0), (5, 1)]

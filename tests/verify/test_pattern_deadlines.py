"""Patterns against hostile answers: regex, json_schema and mcqa end in bounded time.

A pattern from the config or task meets text the model wrote to make it backtrack. Each check
runs in a child process with a 60 s limit (the old code matched with `re`, unbounded: it
failed these tests by running into the limit instead of hanging the suite). A match that runs
out of its budget is an error (`verifier_unscorable`, 422 on the server), never a reward; the
`regex` package answers the classic nested-quantifier bait correctly at once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web

from gym_operator.verify.pool import run_check

# A stub model's answer to a sum of big numbers, and a pattern that backtracks on it in both
# Python's `re` and the `regex` package (each way to split the digits is tried).
BIG = "12345678901234567890123456789012345"
STUB_ANSWER = f"The sum is {BIG}.\n#### {BIG}"
BAIT = r"(\d*?\d){25}#"
TOO_LONG = "took too long on this answer"

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from gym_operator.verify.pool import run_check
print(json.dumps([run_check(*case) for case in json.loads(sys.stdin.read())]))
"""


def outcomes_in_child(*cases: tuple[str, dict[str, Any], str, dict[str, Any]]) -> list[dict]:
    """run_check of each (builtin, task, text, config) in a fresh process (3 GB, 60 s)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_nested_quantifier_bait_is_a_quick_correct_answer() -> None:
    miss, hit = outcomes_in_child(
        ("regex", {}, "a" * 40 + "!", {"pattern": "^(a+)+$"}),
        ("regex", {}, "a" * 40, {"pattern": "^(a+)+$"}),
    )
    assert miss["reward"] == 0.0 and hit["reward"] == 1.0


def test_a_pattern_that_backtracks_on_the_answer_cannot_score_it() -> None:
    started = time.monotonic()
    bait, fair, miss = outcomes_in_child(
        ("regex", {"pattern": BAIT}, STUB_ANSWER, {}),
        ("regex", {"pattern": r"#### (\d+)$", "gold": BIG}, STUB_ANSWER, {"answerField": "gold"}),
        ("regex", {"pattern": r"#### 7$"}, STUB_ANSWER, {}),
    )
    assert time.monotonic() - started < 45
    assert TOO_LONG in bait["error"] and repr(BAIT) in bait["error"] and "reward" not in bait
    assert fair["reward"] == 1.0 and miss["reward"] == 0.0


def test_a_schema_pattern_that_backtracks_on_the_answer_cannot_score_it() -> None:
    key = json.dumps({f"{BIG}.#": 1})
    value = json.dumps(f"{BIG}.#")
    in_pattern, in_property_name, in_additional, classic, fair = outcomes_in_child(
        ("json_schema", {"schema": {"type": "string", "pattern": BAIT}}, value, {}),
        ("json_schema", {"schema": {"patternProperties": {BAIT: {}}}}, key, {}),
        (
            "json_schema",
            {"schema": {"patternProperties": {BAIT: {}}, "additionalProperties": False}},
            key,
            {},
        ),
        ("json_schema", {"schema": {"pattern": "^(a+)+$"}}, json.dumps("a" * 40 + "!"), {}),
        ("json_schema", {"schema": {"pattern": r"^\d+\.#$"}}, value, {}),
    )
    for outcome in (in_pattern, in_property_name, in_additional):
        assert TOO_LONG in outcome["error"] and "reward" not in outcome
    assert classic["reward"] == 0.0 and classic["components"] == {"parse": 1.0, "valid": 0.0}
    assert fair["reward"] == 1.0


def test_all_matches_of_one_answer_share_one_budget() -> None:
    schema = {"type": "array", "items": {"type": "string", "pattern": r"(\d*?\d){12}#"}}
    slow_item = "1" * 18 + ".#"  # tens of milliseconds each
    alone, many = outcomes_in_child(
        ("json_schema", {"schema": schema}, json.dumps([slow_item]), {}),
        ("json_schema", {"schema": schema}, json.dumps([slow_item] * 300), {}),
    )
    assert alone["reward"] == 0.0 and alone["components"]["parse"] == 1.0
    assert TOO_LONG in many["error"]


def test_a_pattern_too_large_to_compile_is_refused_not_built() -> None:
    (outcome,) = outcomes_in_child(
        ("regex", {}, "aaa", {"pattern": "(?:(?:a{65535}){65535}){65535}"}),
    )
    assert "is too large" in outcome["error"]


def test_mcqa_answer_phrase_over_a_megabyte_of_spaces_is_linear() -> None:
    started = time.monotonic()
    spaces, spaced, colon = outcomes_in_child(
        ("mcqa", {"expected_answer": "B"}, "the answer is" + " " * 1_000_000, {}),
        ("mcqa", {"expected_answer": "B"}, "So the answer is   (B)", {}),
        ("mcqa", {"expected_answer": "B"}, "the answer is : option B", {}),
    )
    assert time.monotonic() - started < 45
    assert spaces["reward"] == 0.0 and spaces["details"] == {"extracted": None}
    assert spaced["reward"] == 1.0 and colon["reward"] == 1.0


def test_schemas_whose_matching_cannot_be_bounded_are_refused() -> None:
    both = {"unevaluatedProperties": False, "patternProperties": {"^a": {}}}
    own_draft = {"properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#"}}}
    assert "unevaluatedProperties" in run_check("json_schema", {"schema": both}, "{}", {})["error"]
    assert "own $schema" in run_check("json_schema", {"schema": own_draft}, "{}", {})["error"]
    fine = {"properties": {"$schema": {"type": "string"}}, "unevaluatedProperties": False}
    assert run_check("json_schema", {"schema": fine}, '{"$schema": "x"}', {})["reward"] == 1.0


async def test_a_remote_ref_in_a_task_schema_is_not_fetched() -> None:
    fetched: list[str] = []

    async def schema(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({"type": "object"})

    app = web.Application()
    app.add_routes([web.get("/schema.json", schema)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ref = f"http://127.0.0.1:{port}/schema.json"
    try:
        # in a thread, so that code which does fetch gets its answer and fails the test
        outcome = await asyncio.to_thread(
            run_check, "json_schema", {"schema": {"$ref": ref}}, "{}", {}
        )
    finally:
        await runner.cleanup()
    assert fetched == [] and ref in outcome["error"] and "nothing is fetched" in outcome["error"]


async def test_the_verifier_server_answers_422_and_serves_the_next_answer(
    verifier_server, http: aiohttp.ClientSession
) -> None:
    url = await verifier_server("regex", workers=1, timeout_seconds=30, config={"pattern": BAIT})

    def body(text: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text}]
        return {"response": {"output": [{"type": "message", "content": content}]}}

    limit = aiohttp.ClientTimeout(total=60)
    async with http.post(f"{url}/verify", json=body(STUB_ANSWER), timeout=limit) as bait:
        assert bait.status == 422
        assert TOO_LONG in await bait.text()
    async with http.post(f"{url}/verify", json=body("1" * 25 + "#"), timeout=limit) as fair:
        assert fair.status == 200 and (await fair.json())["reward"] == 1.0

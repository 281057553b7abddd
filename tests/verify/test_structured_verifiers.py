"""regex, json_schema and instruction_following on hand-made cases."""

from __future__ import annotations

import json

import pytest

from gym_operator.verify.base import VerifierError, get_verifier

regex = get_verifier("regex")
json_schema = get_verifier("json_schema")
instructions = get_verifier("instruction_following")


@pytest.mark.parametrize(
    ("config", "task", "text", "reward"),
    [
        ({"pattern": r"\d{3}-\d{4}"}, {}, "call 555-1234 now", 1.0),
        ({"pattern": r"\d{3}-\d{4}", "mode": "full"}, {}, "call 555-1234 now", 0.0),
        ({"pattern": r"\d{3}-\d{4}", "mode": "full"}, {}, " 555-1234\n", 1.0),
        ({}, {"pattern": "^yes$"}, "YES", 0.0),
        ({"flags": ["IGNORECASE"]}, {"pattern": "^yes$"}, "YES", 1.0),
        ({"pattern": r"Answer: (\w+)", "answerField": "gold"}, {"gold": "cat"}, "Answer: cat", 1.0),
        ({"pattern": r"Answer: (\w+)", "answerField": "gold"}, {"gold": "cat"}, "Answer: dog", 0.0),
        ({"pattern": r"(?P<answer>\d+) apples"}, {}, "", 0.0),
    ],
)
def test_regex(config, task, text, reward) -> None:
    assert regex(task, text, config).reward == reward


def test_regex_bad_or_missing_pattern_is_an_error() -> None:
    with pytest.raises(VerifierError, match="invalid pattern"):
        regex({}, "x", {"pattern": "(unclosed"})
    with pytest.raises(VerifierError, match="pattern"):
        regex({}, "x", {})
    with pytest.raises(VerifierError, match="flags"):
        regex({}, "x", {"pattern": "x", "flags": ["VERBOSE!"]})


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "reward", "parse", "valid"),
    [
        ('{"name": "Ada", "age": 36}', 1.0, 1.0, 1.0),
        ('Here you go:\n```json\n{"name": "Ada", "age": 36}\n```\nDone.', 1.0, 1.0, 1.0),
        ('```\n{"name": "Ada", "age": 36}\n```', 1.0, 1.0, 1.0),
        ('{"name": "Ada", "age": -1}', 0.0, 1.0, 0.0),
        ('{"name": "Ada"}', 0.0, 1.0, 0.0),
        ('{"name": "Ada", "age": 36, "x": 1}', 0.0, 1.0, 0.0),
        ("{name: Ada}", 0.0, 0.0, 0.0),
        ("", 0.0, 0.0, 0.0),
    ],
)
def test_json_schema_parse_and_valid_components(text, reward, parse, valid) -> None:
    result = json_schema({"schema": SCHEMA}, text, {})
    assert (result.reward, result.components) == (reward, {"parse": parse, "valid": valid})


def test_json_schema_from_config_string_task_and_partial_credit() -> None:
    assert json_schema({}, '{"name": "A", "age": 1}', {"schema": SCHEMA}).reward == 1.0
    assert json_schema({"schema": json.dumps(SCHEMA)}, '{"name": "A", "age": 1}', {}).reward == 1.0
    partial = json_schema({"schema": SCHEMA}, '{"name": "A"}', {"partialCredit": 0.25})
    assert partial.reward == 0.25
    assert "age" in partial.details["error"]


def test_json_schema_invalid_or_missing_schema_is_an_error() -> None:
    with pytest.raises(VerifierError, match="invalid schema"):
        json_schema({"schema": {"type": "no-such-type"}}, "{}", {})
    with pytest.raises(VerifierError, match="schema"):
        json_schema({}, "{}", {})


def _ifeval(text: str, items: list[dict], **config) -> tuple[float, dict[str, float]]:
    result = instructions({"instructions": items}, text, config)
    return result.reward, result.components


@pytest.mark.parametrize(
    ("text", "instruction", "passed"),
    [
        ("one two three", {"type": "max_words", "n": 3}, True),
        ("one two three four", {"type": "max_words", "n": 3}, False),
        ("It's well-known.", {"type": "min_words", "n": 2}, True),
        ("First. Second! Third?", {"type": "max_sentences", "n": 2}, False),
        ("First. Second!", {"type": "min_sentences", "n": 2}, True),
        ("Cats and Dogs", {"type": "include_keywords", "keywords": ["cats", "dogs"]}, True),
        ("Cats only", {"type": "include_keywords", "keywords": ["cats", "dogs"]}, False),
        ("concatenate", {"type": "forbidden_keywords", "keywords": ["cat"]}, True),
        ("a cat", {"type": "forbidden_keywords", "keywords": ["cat"]}, False),
        ("ha ha ha", {"type": "keyword_frequency", "keyword": "ha", "min": 2, "max": 3}, True),
        ("* a\n* b\n- c", {"type": "bullet_count", "n": 3}, True),
        ("* a\n* b", {"type": "bullet_count", "n": 3}, False),
        ("p1\n\np2\n***\np3", {"type": "paragraph_count", "n": 3}, True),
        ('```json\n{"a": 1}\n```', {"type": "json_format"}, True),
        ("{a: 1}", {"type": "json_format"}, False),
        ("<<My Poem>>\nroses", {"type": "title"}, True),
        ("all lower here", {"type": "lowercase"}, True),
        ("Not lower", {"type": "lowercase"}, False),
        ("ALL CAPS 123", {"type": "uppercase"}, True),
        (
            "Thanks. Is there anything else?",
            {"type": "ends_with", "phrase": "anything else?"},
            True,
        ),
        ("Dear Sir, hello", {"type": "starts_with", "phrase": "dear sir"}, True),
        ("no commas here", {"type": "no_commas"}, True),
        ('"quoted"', {"type": "quotation"}, True),
        ("Hi [name], at [address]", {"type": "placeholders", "n": 2}, True),
        ("", {"type": "min_words", "n": 1}, False),
        ("This is *very* important and *urgent*", {"type": "highlights", "n": 2}, True),
        ("**bold** is not a highlight", {"type": "highlights", "n": 1}, False),
        ("Section 1\nintro\nSection 2\nbody", {"type": "sections", "n": 2}, True),
        ("PART 1\nintro", {"type": "sections", "n": 1, "marker": "PART"}, True),
        ("Section one\nintro", {"type": "sections", "n": 1}, False),
        ("Bye.\nP.S. see you", {"type": "postscript"}, True),
        ("Bye. P.S. inline", {"type": "postscript"}, False),
        ("  short  ", {"type": "max_chars", "n": 5}, True),
        ("short", {"type": "min_chars", "n": 6}, False),
    ],
)
def test_each_instruction_type(text, instruction, passed) -> None:
    reward, _ = _ifeval(text, [instruction])
    assert reward == (1.0 if passed else 0.0)


def test_fraction_and_all_or_nothing_scoring() -> None:
    items = [
        {"type": "lowercase", "id": "lower"},
        {"type": "max_words", "n": 2},
        {"type": "no_commas"},
    ]
    reward, components = _ifeval("hello there friend", items)
    assert reward == pytest.approx(2 / 3)
    assert components == {"lower": 1.0, "1_max_words": 0.0, "2_no_commas": 1.0}
    assert _ifeval("hello there friend", items, scoring="all")[0] == 0.0
    assert _ifeval("hello there", items, scoring="all")[0] == 1.0


def test_unknown_instruction_or_missing_parameter_is_an_error() -> None:
    with pytest.raises(VerifierError, match="unknown type"):
        _ifeval("x", [{"type": "speak_french"}])
    with pytest.raises(VerifierError, match="'n'"):
        _ifeval("x", [{"type": "max_words"}])
    with pytest.raises(VerifierError, match="non-empty list"):
        instructions({}, "x", {})

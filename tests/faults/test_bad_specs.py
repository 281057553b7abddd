"""Every bad spec in the corpus is refused with exactly one problem naming the exact field path."""

from __future__ import annotations

import pytest
from badspecs import ALL_CASES, CONFLICT, GOOD_DATASET, GOOD_JOB, mutated

from gym_operator.api import Dataset, RolloutJob, SpecError, parse_resource


def test_good_bodies_parse() -> None:
    assert isinstance(parse_resource(GOOD_JOB), RolloutJob)
    assert isinstance(parse_resource(GOOD_DATASET), Dataset)


def test_corpus_is_large_and_unique() -> None:
    ids = [case[0] for case in ALL_CASES]
    assert len(ids) == len(set(ids)) == 103


@pytest.mark.parametrize(
    ("path", "value", "kind", "field"),
    [pytest.param(c[2], c[3], c[1], c[4], id=c[0]) for c in ALL_CASES],
)
def test_bad_spec_names_the_field(path: str, value: object, kind: str, field: str) -> None:
    body = mutated(kind, path, value)
    with pytest.raises(SpecError) as info:
        parse_resource(body, source="corpus.yaml")
    problems = info.value.problems
    assert len(problems) == 1, problems
    where, _, message = problems[0].partition(": ")
    assert where == field
    assert message.strip()
    assert str(info.value).startswith("corpus.yaml: invalid spec:")


@pytest.mark.parametrize(
    ("path", "value", "kind"), [pytest.param(c[2], c[3], c[1], id=c[0]) for c in CONFLICT]
)
def test_conflict_message_names_the_fields_involved(path: str, value: object, kind: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_resource(mutated(kind, path, value))
    message = info.value.problems[0].partition(": ")[2]
    assert any(
        key in message
        for key in (
            "policy.",
            "verifier.",
            "retry.",
            "rolloutJobRef",
            "passRate.",
            "filters.",
            "pairing",
            "verl",
            "nemo-gym",
        )
    ), message

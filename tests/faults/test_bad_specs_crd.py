"""The same bad-spec corpus against the generated CRD schemas (what `kubectl apply` checks).

Field rules are checked with jsonschema and must name the field; cross-field rules are CEL, which
jsonschema cannot run: for those the test asserts the CEL rule sits on the object the error names,
with the message the models give (or the same phrase, where the model names the values).
"""

from __future__ import annotations

from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from badspecs import (
    CONFLICT,
    DELETE,
    GOOD_DATASET,
    GOOD_JOB,
    MISSING,
    OUT_OF_RANGE,
    UNKNOWN_FIELD,
    WRONG_TYPE,
    mutated,
)

from gym_operator.api import SpecError, parse_resource
from gym_operator.controller.crdgen import openapi_to_jsonschema

CRDS = Path(__file__).resolve().parents[2] / "crds"
PLURAL = {"RolloutJob": "rolloutjobs", "Dataset": "datasets"}


def crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / f"gymops.dev_{PLURAL[kind]}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


VALIDATORS = {
    kind: jsonschema.Draft202012Validator(openapi_to_jsonschema(crd_schema(kind)))
    for kind in PLURAL
}


def dotted(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def schema_at(kind: str, field: str) -> dict[str, Any]:
    """The CRD schema node of a dotted field path (list items through `[i]`)."""
    node = crd_schema(kind)
    for step in field.replace("[", ".[").split("."):
        node = node["items"] if step.startswith("[") else node["properties"][step]
    return node


def same_rule(cel_message: str, model_message: str) -> bool:
    """The CEL message is the model's, or both share a long phrase (a CEL message cannot
    interpolate the offending values the model names)."""
    if cel_message == model_message:
        return True
    match = SequenceMatcher(None, cel_message, model_message).find_longest_match()
    return match.size >= 15


@pytest.mark.parametrize("kind", ["RolloutJob", "Dataset"])
def test_good_bodies_pass_the_crd_schema(kind: str) -> None:
    body = GOOD_JOB if kind == "RolloutJob" else GOOD_DATASET
    assert list(VALIDATORS[kind].iter_errors(body)) == []


FIELD_CASES = OUT_OF_RANGE + WRONG_TYPE + MISSING + UNKNOWN_FIELD


@pytest.mark.parametrize(
    ("path", "value", "kind", "field", "unknown"),
    [pytest.param(c[2], c[3], c[1], c[4], c in UNKNOWN_FIELD, id=c[0]) for c in FIELD_CASES],
)
def test_crd_schema_refuses_naming_the_field(
    path: str, value: object, kind: str, field: str, unknown: bool
) -> None:
    errors = list(VALIDATORS[kind].iter_errors(mutated(kind, path, value)))
    assert errors, "the CRD schema accepts what the models refuse"
    if unknown:
        parent, _, name = field.rpartition(".")
        assert [(dotted(e), e.validator) for e in errors] == [(parent, "additionalProperties")]
        assert repr(name) in errors[0].message
    elif value is DELETE:
        parent, _, name = field.rpartition(".")
        assert [(dotted(e), e.validator) for e in errors] == [(parent, "required")]
        assert repr(name) in errors[0].message
    else:
        assert {dotted(e) for e in errors} == {field}, [e.message for e in errors]


@pytest.mark.parametrize(
    ("path", "value", "kind", "field"),
    [pytest.param(c[2], c[3], c[1], c[4], id=c[0]) for c in CONFLICT],
)
def test_cross_field_rules_are_cel_on_the_named_object(
    path: str, value: object, kind: str, field: str
) -> None:
    with pytest.raises(SpecError) as info:
        parse_resource(mutated(kind, path, value))
    message = info.value.problems[0].partition(": ")[2]
    node = schema_at(kind, field)
    rules = node.get("x-kubernetes-validations", [])
    assert any(same_rule(r["message"], message) for r in rules), (message, rules)
    assert all(r["rule"].strip() for r in rules)

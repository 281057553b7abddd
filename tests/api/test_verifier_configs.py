"""Each built-in's config is typed: the model and the CRD's CEL rules refuse the same mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from gym_operator.api import SpecError, parse_resource

ROOT = Path(__file__).resolve().parents[2]
ENV = celpy.Environment()


def _verifier_rules() -> list[dict[str, str]]:
    crd = yaml.safe_load((ROOT / "crds" / "gymops.dev_rolloutjobs.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    verifier = schema["properties"]["spec"]["properties"]["verifier"]
    return list(verifier["x-kubernetes-validations"])


def _cel_refusals(verifier: dict[str, Any]) -> list[str]:
    value = celpy.json_to_cel(verifier)
    return [
        rule["message"]
        for rule in _verifier_rules()
        if not ENV.program(ENV.compile(rule["rule"])).evaluate({"self": value})
    ]


def _body(verifier: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "RolloutJob",
        "spec": {
            "input": {"uri": "tasks.jsonl"},
            "policy": {"baseURL": "http://model:8000/v1", "model": "m"},
            "verifier": verifier,
            "output": {"uri": "out/"},
        },
    }


BAD = [
    ({"builtin": "exact_match", "config": {"mdoe": "contains"}}, "config.mdoe"),
    ({"builtin": "math", "config": {"extraction": "boxd"}}, "config.extraction"),
    ({"builtin": "mcqa", "config": {"extraction": "middle"}}, "config.extraction"),
    ({"builtin": "regex", "config": {"mode": "fuzzy"}}, "config.mode"),
    ({"builtin": "code_execution", "config": {"scoring": "most"}}, "config.scoring"),
    ({"builtin": "math", "config": {"answer_field": "x"}}, "config.answer_field"),
]


@pytest.mark.parametrize(("verifier", "field"), BAD)
def test_the_model_refuses_a_bad_config(verifier: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_resource(_body(verifier))
    assert field in str(caught.value)


@pytest.mark.parametrize(
    "verifier",
    [
        {"builtin": "math", "config": {"extraction": "boxed", "stripReasoning": False}},
        {"builtin": "exact_match", "config": {"mode": "contains", "caseInsensitive": False}},
        {"builtin": "code_execution", "config": {"memoryMB": 256, "timeoutSeconds": 3}},
        {"builtin": "llm_judge", "config": {"baseURL": "http://judge/v1", "model": "j"}},
        {"url": "http://verifier:8000", "config": {"anything": 1}},
    ],
)
def test_good_configs_pass_both(verifier: dict[str, Any]) -> None:
    parse_resource(_body(verifier))
    assert _cel_refusals(verifier) == []


def test_values_the_crd_cannot_check_are_refused_by_the_model() -> None:
    with pytest.raises(SpecError, match=r"config.pattern: not a valid regular expression"):
        parse_resource(_body({"builtin": "regex", "config": {"pattern": "(("}}))
    with pytest.raises(SpecError, match=r"config.baseURL: Field required"):
        parse_resource(_body({"builtin": "llm_judge", "config": {"model": "j"}}))

"""`json_schema`: the response is JSON (bare or in a ```json fence) valid against a schema.

Config (all optional):

- `schema` (default —): the JSON Schema; when absent, the task field named by `schemaField` holds
  it (an object, or a string of JSON)
- `schemaField` (default `schema`): task field holding the schema
- `partialCredit` (default `0.0`): reward for JSON that parses but does not validate

Reward: 1.0 when the response parses and validates, `partialCredit` when it only parses, else
0.0. Components: `parse` and `valid` (0.0/1.0). A missing or invalid schema is a VerifierError.

The schema's patterns run on model text under one CPU-time budget per check
(`json_schema_patterns`, `pattern_deadline`): running past it is a VerifierError, and so is a
schema whose matching could not be bounded. `$ref`s resolve within the schema and to the
drafts' own metaschemas; nothing is fetched (an unknown `$ref` is a VerifierError).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import referencing
import referencing.exceptions

from gym_operator.verify.base import VerifierError, VerifyResult, register
from gym_operator.verify.builtins import json_schema_patterns as patterns
from gym_operator.verify.pattern_deadline import budget

_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_MISSING = object()


def load_schema(task: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The schema from config or task, checked against its metaschema."""
    schema = config.get("schema")
    if schema is None:
        field = config.get("schemaField", "schema")
        schema = task.get(field)
        if schema is None:
            raise VerifierError(f"no config.schema and task has no {field!r} field")
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                raise VerifierError(f"task field {field!r} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise VerifierError("the schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise VerifierError(f"invalid schema: {exc.message}") from None
    unbounded = patterns.unbounded_parts(schema)
    if unbounded:
        raise VerifierError(f"schema not supported: {unbounded} (its matching is unbounded)")
    return schema


def schema_errors(schema: dict[str, Any], value: Any) -> list[jsonschema.ValidationError]:
    """Where `value` breaks the schema, by path; patterns within one check's budget."""
    validator = patterns.validator_class(schema)(schema, registry=referencing.Registry())
    try:
        with budget():
            return sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    except referencing.exceptions.Unresolvable as exc:
        raise VerifierError(f"schema $ref {exc.ref!r} is unknown (nothing is fetched)") from None


def parse_json_answer(text: str) -> Any:
    """The JSON value of the response: the whole text, else the last fenced block; _MISSING."""
    candidates = [text.strip(), *reversed([m.strip() for m in _FENCE.findall(text)])]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to be an answer
            continue
    return _MISSING


@register("json_schema")
def check_json_schema(task: dict[str, Any], text: str, config: dict[str, Any]) -> VerifyResult:
    """1.0 for JSON valid against the schema; components parse/valid."""
    schema = load_schema(task, config)
    value = parse_json_answer(text)
    if value is _MISSING:
        return VerifyResult(0.0, {"parse": 0.0, "valid": 0.0}, {"error": "response is not JSON"})
    errors = schema_errors(schema, value)
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(root)"
        partial = float(config.get("partialCredit", 0.0))
        return VerifyResult(
            partial, {"parse": 1.0, "valid": 0.0}, {"error": f"{where}: {errors[0].message}"}
        )
    return VerifyResult(1.0, {"parse": 1.0, "valid": 1.0})

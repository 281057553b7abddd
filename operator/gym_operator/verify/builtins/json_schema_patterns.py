"""JSON Schema validators whose pattern keywords match under the check's CPU-time budget.

jsonschema matches `pattern`, `patternProperties` and the property names that
`additionalProperties` weighs with Python's `re`, unbounded, on strings and keys the model
wrote. Each draft's validator class is extended with those three keywords matched by
`pattern_deadline` instead (same outcomes, same error messages). `unevaluatedProperties` also
matches `patternProperties`, deep inside jsonschema where no keyword can replace it, so a
schema holding both is refused (`unbounded_parts`), as is a subschema naming its own
`$schema`: jsonschema validates it with the stock class of that draft.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
from jsonschema import ValidationError

from gym_operator.verify.pattern_deadline import search


def pattern(validator: Any, wanted: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """`pattern`: a string matches the pattern somewhere."""
    if validator.is_type(instance, "string") and not search(wanted, instance):
        yield ValidationError(f"{instance!r} does not match {wanted!r}")


def pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    """`patternProperties`: each property whose name matches a pattern is valid under its
    schema."""
    if not validator.is_type(instance, "object"):
        return
    for wanted, subschema in patterns.items():
        for key, value in instance.items():
            if search(wanted, key):
                yield from validator.descend(value, subschema, path=key, schema_path=wanted)


def additional(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """The property names neither `properties` nor `patternProperties` covers, in order."""
    named = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in named and not any(search(wanted, key) for wanted in patterns)
    ]


def additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    """`additionalProperties`: what the other property keywords leave is valid under it."""
    if not validator.is_type(instance, "object"):
        return
    extras = additional(instance, schema)
    if validator.is_type(allowed, "object"):
        for key in extras:
            yield from validator.descend(instance[key], allowed, path=key)
    elif not allowed and extras:
        if "patternProperties" in schema:
            names = ", ".join(repr(key) for key in sorted(extras))
            verb = "does" if len(extras) == 1 else "do"
            regexes = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            yield ValidationError(f"{names} {verb} not match any of the regexes: {regexes}")
        else:
            names = ", ".join(repr(key) for key in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


KEYWORDS = {
    "pattern": pattern,
    "patternProperties": pattern_properties,
    "additionalProperties": additional_properties,
}


@cache
def timed_class(stock: type) -> Any:
    """The draft's validator class with the pattern keywords above."""
    return jsonschema.validators.extend(stock, validators=KEYWORDS)


def validator_class(schema: dict[str, Any]) -> Any:
    """The timed validator class for the schema's draft (its `$schema`, else the latest)."""
    return timed_class(jsonschema.validators.validator_for(schema))


def keys_anywhere(node: Any, root: bool = True) -> Iterator[tuple[str, Any, bool]]:
    """(key, value, at the root) of every object in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value, root
            yield from keys_anywhere(value, root=False)
    elif isinstance(node, list):
        for item in node:
            yield from keys_anywhere(item, root=False)


def unbounded_parts(schema: dict[str, Any]) -> str | None:
    """Why the schema's pattern matching could not be bounded, or None."""
    keys = set()
    for key, value, root in keys_anywhere(schema):
        if key == "$schema" and isinstance(value, str) and not root:
            return f"a subschema names its own $schema ({value!r})"
        keys.add(key)
    if {"unevaluatedProperties", "patternProperties"} <= keys:
        return "unevaluatedProperties together with patternProperties"
    return None

"""The columns of every exported row per (format, kind): an Arrow schema, also the JSONL fields.

Loaders infer a JSONL file's types from its first block, and Arrow cannot unify structs that differ
between rows, so every row of an export has exactly the same fields with the same types:

- a chat message is always `{role, content, tool_calls, tool_call_id}`: `content` and
  `tool_call_id` are strings ("" when there is none), `tool_calls` a list (empty when there is
  none) of `{id, type, function: {name, arguments}}` with `arguments` the JSON string;
- values whose shape is free (tool schemas, verifier fields, ground truths that are not strings)
  are JSON text in a string column, except where a consumer needs the value itself (noted in
  the exporters);
- numbers keep one type per column (float64 or int64), booleans are booleans;
- one exception, NESTED: verl's MultiTurnSFTDataset and NeMo-RL's OpenAIFormatDataset hand the
  `tools` column to the chat template unchanged, so there the tool schemas are nested values. In
  JSONL (NeMo-RL) they are written as they are (NeMo-RL's `use_preserving_dataset: true` reads
  them without Arrow); in parquet (verl) their Arrow type is the union of the file's tool schemas
  (a key one tool lacks reads back as null), and an empty object (`parameters: {}`) is written as
  null, since Arrow has no struct without fields.

`conform(row, schema)` turns an exporter's row into exactly this shape (missing strings "",
missing lists [], missing structs filled field by field) and refuses a field the schema does not
know, so nothing is dropped silently. `list_paths(schema)` names the lists that may be empty: a
JSONL file whose first rows leave one of them empty everywhere would be typed as a list of nulls,
so the writer puts rows that fill them first (exemplars.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

STRING = pa.string()
FLOAT = pa.float64()
INT = pa.int64()
BOOL = pa.bool_()
# A JSON value whose Arrow type each file infers from its own values (see the module docstring).
NESTED = pa.null()

TOOL_CALL = pa.struct(
    [
        ("id", STRING),
        ("type", STRING),
        ("function", pa.struct([("name", STRING), ("arguments", STRING)])),
    ]
)
MESSAGE = pa.struct(
    [
        ("role", STRING),
        ("content", STRING),
        ("tool_calls", pa.list_(TOOL_CALL)),
        ("tool_call_id", STRING),
    ]
)
MESSAGES = pa.list_(MESSAGE)

# Per-task statistics and identity carried by RL rows (exporters._stats).
STATS = [
    ("source", STRING),
    ("task_index", INT),
    ("task_id", STRING),
    ("pass_rate", FLOAT),
    ("mean_reward", FLOAT),
    ("num_rollouts", INT),
]


class SchemaError(ValueError):
    """An exported row does not fit its schema (an exporter bug, never user input)."""


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema(list(fields))


SCHEMAS: dict[tuple[str, str], pa.Schema] = {
    ("trl", "sft"): _schema(("prompt", MESSAGES), ("completion", MESSAGES), ("tools", STRING)),
    ("trl", "kto"): _schema(
        ("prompt", MESSAGES), ("completion", MESSAGES), ("label", BOOL), ("tools", STRING)
    ),
    ("trl", "dpo"): _schema(
        ("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES), ("tools", STRING)
    ),
    ("trl", "rl"): _schema(
        ("prompt", MESSAGES),
        ("solution", STRING),
        ("solutions", pa.list_(STRING)),
        ("tools", STRING),
        *STATS,
        ("task", STRING),
    ),
    ("openrlhf", "sft"): _schema(("input", MESSAGES), ("output", MESSAGES)),
    ("openrlhf", "dpo"): _schema(
        ("prompt", MESSAGES), ("chosen", MESSAGES), ("rejected", MESSAGES), ("tools", STRING)
    ),
    ("openrlhf", "rl"): _schema(
        ("input", MESSAGES),
        ("label", STRING),
        ("datasource", STRING),
        ("tools", STRING),
        *STATS,
        ("task", STRING),
    ),
    ("verl", "sft"): _schema(("messages", MESSAGES), ("tools", NESTED)),
    ("verl", "rl"): _schema(
        ("data_source", STRING),
        ("prompt", MESSAGES),
        ("ability", STRING),
        ("reward_model", pa.struct([("style", STRING), ("ground_truth", STRING)])),
        (
            "extra_info",
            pa.struct(
                [
                    ("split", STRING),
                    ("index", INT),
                    *STATS,
                    ("tools", STRING),
                    ("task", STRING),
                    ("reward", STRING),
                ]
            ),
        ),
    ),
    ("nemo-rl", "sft"): _schema(
        ("messages", MESSAGES), ("tools", NESTED), ("message_loss_mask", pa.list_(INT))
    ),
    ("nemo-rl", "dpo"): _schema(
        ("context", MESSAGES),
        (
            "completions",
            pa.list_(pa.struct([("rank", INT), ("completion", MESSAGES)])),
        ),
        ("tools", STRING),
    ),
}
# Formats whose rows are NeMo Gym rows, kept as they are (free-form task fields; JSONL only, read
# line by line by NeMo-RL's NemoGymDataset and NeMo Gym's tools): no schema.
FREE_FORM = {("nemo-rl", "rl"), ("nemo-gym", "sft"), ("nemo-gym", "rl")}


def schema_for(fmt: str, kind: str) -> pa.Schema | None:
    """The schema of (format, kind), or None for rows kept in NeMo Gym's free form."""
    if (fmt, kind) in FREE_FORM:
        return None
    return SCHEMAS[(fmt, kind)]


def _empty(kind: pa.DataType) -> Any:
    if pa.types.is_string(kind):
        return ""
    if pa.types.is_list(kind):
        return []
    if pa.types.is_struct(kind):
        return {f.name: _empty(f.type) for f in kind}
    return None


# A compiled conformer: (value, set of filled list paths to add to) -> the conformed value.
Conformer = Callable[[Any, set[str]], Any]


def _missing(kind: pa.DataType, path: str) -> Any:
    empty = _empty(kind)
    if empty is None:
        raise SchemaError(f"{path}: missing value of type {kind}")
    return empty


def _compile(kind: pa.DataType, path: str) -> Conformer:
    """A conformer for values of `kind` at `path` (dispatch on the type happens once, here)."""
    if kind == NESTED:
        return lambda value, _: value if value is not None else []
    if pa.types.is_struct(kind):
        return _struct(kind, path)
    if pa.types.is_list(kind):
        return _list(kind, path)
    return _scalar(kind, path)


def _struct(kind: pa.StructType, path: str) -> Conformer:
    fields = [(f.name, _compile(f.type, f"{path}.{f.name}"), f.type) for f in kind]
    names = {f.name for f in kind}

    def conform_struct(value: Any, filled: set[str]) -> Any:
        if value is None:
            return _missing(kind, path)
        if not isinstance(value, dict):
            raise SchemaError(f"{path}: expected an object, got {type(value).__name__}")
        if not names.issuperset(value):
            unknown = sorted(set(value) - names)
            raise SchemaError(f"{path}: fields {unknown} are not in the schema")
        return {name: sub(value.get(name), filled) for name, sub, _ in fields}

    return conform_struct


def _list(kind: pa.ListType, path: str) -> Conformer:
    item = _compile(kind.value_type, f"{path}[]")

    def conform_list(value: Any, filled: set[str]) -> Any:
        if value is None:
            return []
        if not isinstance(value, list):
            raise SchemaError(f"{path}: expected a list, got {type(value).__name__}")
        if value:
            filled.add(path)
        return [item(v, filled) for v in value]

    return conform_list


def _scalar(kind: pa.DataType, path: str) -> Conformer:
    if pa.types.is_string(kind):
        accepts: tuple[type, ...] = (str,)
    elif pa.types.is_boolean(kind):
        accepts = (bool,)
    elif pa.types.is_integer(kind):
        accepts = (int,)
    else:
        accepts = (int, float)
    floating = pa.types.is_floating(kind)

    def conform_scalar(value: Any, _: set[str]) -> Any:
        if value is None:
            return _missing(kind, path)
        if not isinstance(value, accepts) or (isinstance(value, bool) and bool not in accepts):
            raise SchemaError(f"{path}: {type(value).__name__} value where the schema has {kind}")
        return float(value) if floating else value

    return conform_scalar


RowConformer = Callable[[dict[str, Any]], tuple[dict[str, Any], set[str]]]


def row_conformer(schema: pa.Schema) -> RowConformer:
    """A function row -> (conformed row, filled list paths); build it once per export."""
    fields = [(f.name, _compile(f.type, f.name)) for f in schema]
    names = set(schema.names)

    def conform_row(row: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        if not names.issuperset(row):
            raise SchemaError(f"row fields {sorted(set(row) - names)} are not in the schema")
        filled: set[str] = set()
        return {name: sub(row.get(name), filled) for name, sub in fields}, filled

    return conform_row


def conform(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    """The row with exactly the schema's fields, in its order (see the module docstring)."""
    return row_conformer(schema)(row)[0]


def without_empty_objects(value: Any) -> Any:
    """Empty objects as null, at any depth (Arrow has no struct type without fields)."""
    if isinstance(value, dict):
        return {k: without_empty_objects(v) for k, v in value.items()} or None
    if isinstance(value, list):
        return [without_empty_objects(v) for v in value]
    return value


def has_nested(schema: pa.Schema) -> bool:
    """Whether a column's type is inferred per file (NESTED)."""
    return any(f.type == NESTED for f in schema)


def table(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Conformed rows as an Arrow table of the schema (NESTED columns typed by their values)."""
    if not has_nested(schema):
        return pa.Table.from_pylist(records, schema=schema)
    arrays = [
        pa.array([without_empty_objects(r[f.name]) for r in records])
        if f.type == NESTED
        else pa.array([r[f.name] for r in records], type=f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, names=schema.names)


def _paths(kind: pa.DataType, path: str) -> Iterator[str]:
    if pa.types.is_list(kind):
        yield path
        yield from _paths(kind.value_type, path + "[]")
    elif pa.types.is_struct(kind):
        for f in kind:
            yield from _paths(f.type, f"{path}.{f.name}")


def list_paths(schema: pa.Schema) -> list[str]:
    """Every list in the schema, as `column`, `column[].field`, ... paths."""
    return [p for f in schema for p in _paths(f.type, f.name)]


def filled_paths(row: dict[str, Any], schema: pa.Schema) -> set[str]:
    """The list paths that have at least one element in this (conformed) row."""
    return row_conformer(schema)(row)[1]

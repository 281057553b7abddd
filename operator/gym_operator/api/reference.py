"""Render the CR reference (docs/reference.md) from the api models, so the docs cannot drift."""

from __future__ import annotations

import enum
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gym_operator.api.dataset import Dataset, DatasetSpec, DatasetStatus
from gym_operator.api.rolloutjob import RolloutJob, RolloutJobSpec, RolloutJobStatus

HEADER = """# Resource reference (gymops.dev/v1alpha1)

Generated from `operator/gym_operator/api/` by `make reference`; do not edit.
Every field below is also shown by `kubectl explain rolloutjob.spec...` once the CRDs are installed.
"""


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (X, X | None, list[X], dict[str, X])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _type_name(annotation: Any) -> str:
    """A short, reader-facing type name."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[1])}" if len(args) == 2 else "map"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, "any")


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return "(object defaults)"
    if info.default is PydanticUndefined:
        return "**required**"
    if info.default is None:
        return ""
    if isinstance(info.default, bool):
        return f"`{str(info.default).lower()}`"
    return f"`{info.default}`"


def _bounds(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for name, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(meta, name, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return ", ".join(parts)


def _rows(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> list[str]:
    rows: list[str] = []
    for name, info in model.model_fields.items():
        wire = info.alias or name
        full = f"{path}.{wire}"
        desc = (info.description or "").replace("|", "\\|")
        bounds = _bounds(info)
        rows.append(
            f"| `{full}` | {_type_name(info.annotation)} | {_default(info)} | "
            f"{desc}{' (' + bounds + ')' if bounds else ''} |"
        )
        sub = _model_of(info.annotation)
        if sub is not None and sub not in seen:
            is_list = typing.get_origin(info.annotation) is list or "list[" in str(info.annotation)
            rows.extend(_rows(sub, full + ("[]" if is_list else ""), seen | {sub}))
    return rows


def _section(title: str, doc: str | None, model: type[BaseModel], path: str) -> str:
    head = "| field | type | default | description |\n|---|---|---|---|"
    body = "\n".join(_rows(model, path, {model}))
    return f"## {title}\n\n{(doc or '').strip()}\n\n{head}\n{body}\n"


def render_reference() -> str:
    """The whole reference document as Markdown."""
    sections = [
        _section("RolloutJob spec", RolloutJob.__doc__, RolloutJobSpec, "spec"),
        _section("RolloutJob status", None, RolloutJobStatus, "status"),
        _section("Dataset spec", Dataset.__doc__, DatasetSpec, "spec"),
        _section("Dataset status", None, DatasetStatus, "status"),
    ]
    return HEADER + "\n" + "\n".join(sections)

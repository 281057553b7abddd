"""Reading RolloutJob and Dataset specs from YAML, with errors that name the field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gym_operator.api.dataset import Dataset
from gym_operator.api.rolloutjob import RolloutJob

Resource = RolloutJob | Dataset
KINDS: dict[str, type[RolloutJob] | type[Dataset]] = {"RolloutJob": RolloutJob, "Dataset": Dataset}


class SpecError(ValueError):
    """A spec that cannot be used; the message names each bad field by its path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid spec:\n" + "\n".join(f"  - {p}" for p in problems))


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as `spec.sampling.params[0].x`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem: `field.path: message`."""
    lines = []
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and "[" in p))
        where = field_path(loc) or "(top level)"
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    return lines


def parse_resource(body: dict[str, Any], source: str = "<resource>") -> Resource:
    """Validate a resource body (dict from YAML or the API) into its model."""
    if not isinstance(body, dict):
        raise SpecError(source, ["(top level): expected a mapping with kind and spec"])
    kind = body.get("kind")
    model = KINDS.get(str(kind))
    if model is None:
        raise SpecError(source, [f"kind: expected one of {sorted(KINDS)}, got {kind!r}"])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SpecError(source, describe_errors(exc)) from None


def load_resource(path: str | Path) -> Resource:
    """Read one resource from a YAML file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_resource(body, str(path))

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
    """Read one resource from a YAML file (a file of several documents is refused by name)."""
    resources = load_resources(path)
    if len(resources) != 1:
        raise SpecError(
            str(path),
            [
                f"(top level): expected one resource, found {len(resources)} documents "
                f"({', '.join(r.kind for r in resources)}); put each in a file of its own "
                "(`gymops run` accepts a RolloutJob and its Dataset in one file)"
            ],
        )
    return resources[0]


def load_resources(path: str | Path) -> list[Resource]:
    """Every resource of a YAML file (documents separated by `---`; empty ones skipped)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        bodies = [b for b in yaml.safe_load_all(text) if b is not None]
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None
    if not bodies:
        raise SpecError(str(path), ["(top level): the file holds no document"])
    if len(bodies) == 1:
        return [parse_resource(bodies[0], str(path))]
    return [parse_resource(b, f"{path} (document {i + 1})") for i, b in enumerate(bodies)]

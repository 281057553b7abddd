"""Reading RolloutJob and Dataset specs from YAML, with errors that name the field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gym_operator import errors
from gym_operator.api.dataset import Dataset
from gym_operator.api.rolloutjob import RolloutJob

Resource = RolloutJob | Dataset
KINDS: dict[str, type[RolloutJob] | type[Dataset]] = {"RolloutJob": RolloutJob, "Dataset": Dataset}
MAX_EXPANDED_SIZE = 1_000_000
"""A document whose aliases would expand it beyond this size (characters of its scalars plus one
per node) is refused as a YAML bomb; one without aliases is not limited here."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses recursive aliases and aliases expanding beyond MAX_EXPANDED_SIZE."""

    def compose_document(self) -> yaml.Node | None:
        node: yaml.Node | None = super().compose_document()
        if node is None:
            return None
        expanded, distinct = expanded_size(node)
        if expanded > MAX_EXPANDED_SIZE and expanded > distinct:
            raise yaml.YAMLError(
                f"aliases expand the document beyond {MAX_EXPANDED_SIZE} characters "
                "(refused as a YAML bomb)"
            )
        return node


def expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(size once every alias is expanded, size of the distinct nodes); counted, not built.

    A node's size is one plus its scalar's length plus its children's sizes. Each distinct node
    is visited once (its size memoised), so this costs time linear in the document however many
    times aliases multiply it; expanded sizes stop growing past the bound. A recursive alias
    (a collection inside itself) is a YAMLError.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            own = 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)
            total = own + sum(sizes[id(child)] for child in children)
            sizes[id(node)] = min(total, MAX_EXPANDED_SIZE + 1)
            distinct += own
            visiting.discard(id(node))
            continue
        if id(node) in visiting:
            raise yaml.YAMLError("a recursive alias (a collection inside itself)")
        visiting.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)], distinct


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class SpecError(errors.BadSpec, ValueError):
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
    """One line per field: `field.path: message` (a union's members joined with "or")."""
    by_field: dict[str, list[str]] = {}
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not _is_union_tag(p))
        where = field_path(loc) or "(top level)"
        by_field.setdefault(where, []).append(item["msg"].removeprefix("Value error, "))
    return [f"{where}: {' or '.join(msgs)}" for where, msgs in by_field.items()]


def _is_union_tag(part: Any) -> bool:
    """Whether a `loc` part names a union member (`literal['auto']`, `constrained-int`), not a
    field: pydantic adds these for fields such as `concurrency: int | "auto"`."""
    return isinstance(part, str) and ("[" in part or part.startswith(("constrained-", "function-")))


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
        bodies = [b for b in yaml.load_all(text, Loader=_BoundedLoader) if b is not None]
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None
    if not bodies:
        raise SpecError(str(path), ["(top level): the file holds no document"])
    if len(bodies) == 1:
        return [parse_resource(bodies[0], str(path))]
    return [parse_resource(b, f"{path} (document {i + 1})") for i, b in enumerate(bodies)]

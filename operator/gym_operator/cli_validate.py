"""`gymops validate FILE...`: check specs offline, as `gymops run` and `kubectl apply` would.

Three checks per document: the api/ models (every field, each built-in verifier's typed
config), the CRD's structural schema (types, enums, bounds, unknown fields) and its CEL rules
(evaluated with cel-python when it is installed; said so when it is not). Exit 0 when every
document passes, 2 otherwise; each problem is one line naming the file, document and field.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from rich.console import Console
from rich.markup import escape

from gym_operator.api import SpecError, parse_resource
from gym_operator.controller import crdgen

EXIT_OK, EXIT_INVALID = 0, 2
SKIPPED: list[str] = []
"""The problems of a document of another kind (a Secret beside the jobs): none, not checked."""


def main(args: argparse.Namespace) -> int:
    """Validate every document of every file; print one line per problem."""
    console = Console()
    failed = False
    if importlib.util.find_spec("celpy") is None:
        console.print("[yellow]cel-python is not installed: CEL rules are not checked[/yellow]")
    for name in args.files:
        for where, problems in validate_file(Path(name)):
            failed = failed or bool(problems)
            if problems is SKIPPED:
                console.print(f"[dim]skipped {escape(where)} (not a gymops.dev kind)[/dim]")
            elif not problems:
                console.print(f"[green]ok[/green] {escape(where)}", soft_wrap=True)
            for problem in problems:
                console.print(f"[red]{escape(where)}: {escape(problem)}[/red]", soft_wrap=True)
    return EXIT_INVALID if failed else EXIT_OK


def validate_file(path: Path) -> list[tuple[str, list[str]]]:
    """(where, problems) per document of the file."""
    try:
        bodies = [b for b in yaml.safe_load_all(path.read_text(encoding="utf-8")) if b is not None]
    except (OSError, yaml.YAMLError) as exc:
        return [(str(path), [f"cannot read: {exc}"])]
    if not bodies:
        return [(str(path), ["the file holds no document"])]
    results = []
    for index, body in enumerate(bodies):
        where = f"{path}" if len(bodies) == 1 else f"{path} (document {index + 1})"
        results.append((where, validate_body(body)))
    return results


def validate_body(body: Any) -> list[str]:
    """Problems of one document: the models' first, then what the API server would refuse."""
    if isinstance(body, dict) and body.get("kind") and body.get("kind") not in _schemas():
        if not str(body.get("apiVersion", "")).startswith("gymops.dev/"):
            return SKIPPED
    try:
        parse_resource(body)
    except SpecError as exc:
        models = exc.problems
    else:
        models = []
    kind = body.get("kind") if isinstance(body, dict) else None
    schema = _schemas().get(str(kind))
    if schema is None:
        return models
    server = [f"CRD schema: {p}" for p in _schema_problems(schema, body)]
    server += [
        f"CRD rule: {p}" for p in _cel_problems(schema["raw"], _defaults(schema["raw"], body))
    ]
    return models + [p for p in server if p not in models]


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for info in crdgen.CRDS:
        raw = crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out[info.kind] = {"raw": raw, "json": crdgen.openapi_to_jsonschema(raw)}
    return out


def _schema_problems(schema: dict[str, Any], body: dict[str, Any]) -> list[str]:
    checked = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft202012Validator(schema["json"])
    return [
        f"{_path(error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(checked), key=lambda e: list(e.absolute_path))
    ]


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _cel_problems(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    if importlib.util.find_spec("celpy") is None:
        return []
    import celpy

    env = celpy.Environment()
    problems = []
    for rule in schema.get("x-kubernetes-validations") or []:
        try:
            ok = env.program(env.compile(rule["rule"])).evaluate({"self": celpy.json_to_cel(value)})
        except Exception:
            continue  # a rule that cannot run on a value of the wrong type: the schema says why
        if not ok:
            problems.append(f"{path or '(top level)'}: {rule['message']}")
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                problems += _cel_problems(
                    sub, _defaults(sub, value[name]), f"{path}.{name}".lstrip(".")
                )
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += _cel_problems(schema["items"], item, f"{path}[{index}]")
    return problems


def _defaults(schema: dict[str, Any], value: Any) -> Any:
    """Scalar defaults filled into an object, as the API server does before CEL runs."""
    if not isinstance(value, dict) or "properties" not in schema:
        return value
    out = dict(value)
    for name, sub in schema["properties"].items():
        if name not in out and "default" in sub:
            out[name] = sub["default"]
    return out

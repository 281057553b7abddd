"""`instruction_following`: a list of checkable, language-free instructions (IFEval-style).

The task field `instructions` (or config `instructions`, used when the task has none) is a list
of objects `{"type": ..., ...parameters}`; an optional `"id"` names the component.

- `max_words` / `min_words` (`n`): word count <= n / >= n
- `max_sentences` / `min_sentences` (`n`): sentence count (split on . ! ?) <= n / >= n
- `include_keywords` (`keywords`): every keyword appears (case-insensitive, whole word)
- `forbidden_keywords` (`keywords`): no keyword appears
- `keyword_frequency` (`keyword`, `min`?, `max`?): occurrences within [min, max]
- `bullet_count` (`n`): exactly n lines start with `* ` or `- `
- `paragraph_count` (`n`): exactly n paragraphs separated by blank lines or `***`
- `json_format` (—): the response (or its ```json fence) parses as JSON
- `title` (—): a title in double angle brackets, `<<like this>>`
- `lowercase` / `uppercase` (—): no upper-case / no lower-case letters
- `starts_with` / `ends_with` (`phrase`): the stripped response starts / ends with the phrase
- `no_commas` (—): no comma
- `quotation` (—): the response is wrapped in double quotes
- `placeholders` (`n`): at least n `[placeholder]`s
- `highlights` (`n`): at least n markdown-highlighted spans, `*like this*`
- `sections` (`n`, `marker`? default `Section`): exactly n sections, each opened by a line
  starting with the marker followed by a number (`Section 1`)
- `postscript` (`marker`? default `P.S.`): a line starting with the marker
- `max_chars` / `min_chars` (`n`): length of the stripped response <= n / >= n characters

Config: `instructionsField` (default `instructions`), `scoring`: `fraction` (default; reward =
fraction of instructions followed) or `all` (1.0 only when all are followed). Components: one
per instruction, 0.0/1.0, keyed by its `id` or `<index>_<type>`. An unknown type or a missing
parameter is a VerifierError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from gym_operator.verify.base import VerifierError, VerifyResult, register
from gym_operator.verify.builtins.json_schema import _MISSING, parse_json_answer

Rule = Callable[[str, dict[str, Any]], bool]


def _param(spec: dict[str, Any], name: str) -> Any:
    if name not in spec:
        raise VerifierError(f"instruction {spec.get('type')!r} needs parameter {name!r}")
    return spec[name]


def _words(text: str) -> list[str]:
    return re.findall(r"\b\w+(?:['-]\w+)*\b", text)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"\w", s)]


def _count_keyword(text: str, keyword: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(keyword)}(?!\w)", text, flags=re.IGNORECASE))


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\*\*\*\s*\n|\n\s*\n", text.strip()) if p.strip()]


def _sections(text: str, marker: str) -> int:
    return len(re.findall(rf"^[ \t]*{re.escape(marker)}[ \t]+\d+", text, flags=re.MULTILINE))


def _keywords(spec: dict[str, Any]) -> list[str]:
    value = _param(spec, "keywords")
    return [value] if isinstance(value, str) else [str(k) for k in value]


def _frequency(text: str, spec: dict[str, Any]) -> bool:
    count = _count_keyword(text, str(_param(spec, "keyword")))
    return int(spec.get("min", 1)) <= count <= int(spec.get("max", 10**9))


RULES: dict[str, Rule] = {
    "max_words": lambda t, s: len(_words(t)) <= int(_param(s, "n")),
    "min_words": lambda t, s: len(_words(t)) >= int(_param(s, "n")),
    "max_sentences": lambda t, s: len(_sentences(t)) <= int(_param(s, "n")),
    "min_sentences": lambda t, s: len(_sentences(t)) >= int(_param(s, "n")),
    "include_keywords": lambda t, s: all(_count_keyword(t, k) for k in _keywords(s)),
    "forbidden_keywords": lambda t, s: not any(_count_keyword(t, k) for k in _keywords(s)),
    "keyword_frequency": _frequency,
    "bullet_count": lambda t, s: (
        len(re.findall(r"^[ \t]*[*-][ \t]+\S", t, flags=re.MULTILINE)) == int(_param(s, "n"))
    ),
    "paragraph_count": lambda t, s: len(_paragraphs(t)) == int(_param(s, "n")),
    "json_format": lambda t, s: parse_json_answer(t) is not _MISSING,
    "title": lambda t, s: re.search(r"<<[^\n<>]+>>", t) is not None,
    "lowercase": lambda t, s: bool(t.strip()) and t == t.lower(),
    "uppercase": lambda t, s: bool(t.strip()) and t == t.upper(),
    "starts_with": lambda t, s: t.strip().lower().startswith(str(_param(s, "phrase")).lower()),
    "ends_with": lambda t, s: t.strip().lower().endswith(str(_param(s, "phrase")).lower()),
    "no_commas": lambda t, s: "," not in t,
    "quotation": lambda t, s: len(t.strip()) > 1 and t.strip()[0] == t.strip()[-1] == '"',
    "placeholders": lambda t, s: len(re.findall(r"\[[^\[\]\n]+\]", t)) >= int(_param(s, "n")),
    "highlights": lambda t, s: (
        len(re.findall(r"(?<!\*)\*[^\s*][^*\n]*\*(?!\*)", t)) >= int(_param(s, "n"))
    ),
    "sections": lambda t, s: _sections(t, str(s.get("marker", "Section"))) == int(_param(s, "n")),
    "postscript": lambda t, s: (
        re.search(rf"^[ \t]*{re.escape(str(s.get('marker', 'P.S.')))}", t, flags=re.MULTILINE)
        is not None
    ),
    "max_chars": lambda t, s: len(t.strip()) <= int(_param(s, "n")),
    "min_chars": lambda t, s: len(t.strip()) >= int(_param(s, "n")),
}


def instruction_list(task: dict[str, Any], config: dict[str, Any]) -> list[dict[str, Any]]:
    """The instructions to check, validated for shape and known types."""
    field = config.get("instructionsField", "instructions")
    instructions = task.get(field, config.get("instructions"))
    if not isinstance(instructions, list) or not instructions:
        raise VerifierError(
            f"task field {field!r} (or config.instructions) must be a non-empty list"
        )
    for index, spec in enumerate(instructions):
        if not isinstance(spec, dict) or spec.get("type") not in RULES:
            raise VerifierError(
                f"instruction {index} has unknown type {spec!r}; known: {sorted(RULES)}"
            )
    return instructions


@register("instruction_following")
def check_instruction_following(
    task: dict[str, Any], text: str, config: dict[str, Any]
) -> VerifyResult:
    """Fraction (or all) of the instructions the response follows."""
    scoring = config.get("scoring", "fraction")
    if scoring not in ("fraction", "all"):
        raise VerifierError(f"config.scoring {scoring!r} is not one of ('fraction', 'all')")
    components: dict[str, float] = {}
    for index, spec in enumerate(instruction_list(task, config)):
        name = str(spec.get("id") or f"{index}_{spec['type']}")
        components[name] = 1.0 if RULES[spec["type"]](text, spec) else 0.0
    passed = sum(components.values())
    if scoring == "all":
        reward = 1.0 if passed == len(components) else 0.0
    else:
        reward = passed / len(components)
    return VerifyResult(reward=reward, components=components)

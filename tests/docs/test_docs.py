"""The user guide stays true to the code: metrics, specs, commands, links, formats, row shapes."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from gym_operator import cli, metrics
from gym_operator.api import Phase, SpecError, parse_resource
from gym_operator.api.dataset import SUPPORTED_KINDS, DatasetSpec
from gym_operator.controller import constants
from gym_operator.data import filters, kinds
from gym_operator.data.builder import build_dataset
from gym_operator.data.synthetic import rollout_row, write_rollouts
from gym_operator.protocol.failures import FailureClass
from gym_operator.storage.store import Storage

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OWN_PAGES = ("quickstart.md", "concepts.md", "integration.md", "README.md")
DOC_FILES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
GYMOPS = re.compile(r"(?<![\w-])(?<!kubectl )gymops ([a-z][a-z-]*)([^`\n]*)")
KUBECTL_GYMOPS = re.compile(r"kubectl[ -]gymops ([a-z][a-z-]*)([^`\n]*)")
SECTIONS = {
    "trl": "TRL",
    "openrlhf": "OpenRLHF",
    "verl": "VeRL",
    "nemo-rl": "NeMo-RL",
    "nemo-gym": "NeMo Gym",
}
TASK_FIELDS = {"expected_answer", "task_type"}
"""Fields of the synthetic tasks below; rows that carry task fields through may hold them."""


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The body of `## title` up to the next `## ` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    assert match, f"no section '## {title}'"
    return match.group(1)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = heading.strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


# --------------------------------------------------------------------------------- metrics


def metric_names() -> list[str]:
    names = []
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase) and not getattr(value, "_labelvalues", ()):
            suffix = "_total" if value._type == "counter" else ""
            names.append(value._name + suffix)
    return sorted(set(names))


def test_metric_names_are_read_from_metrics_py() -> None:
    names = metric_names()
    assert "gymops_rollouts_total" in names and "gymops_reward" in names
    assert len(names) >= 20


@pytest.mark.parametrize("name", metric_names())
def test_every_metric_is_documented_in_concepts(name: str) -> None:
    assert f"`{name}`" in section(read("concepts.md"), "Metrics")


def test_every_rollout_outcome_label_is_documented() -> None:
    text = section(read("concepts.md"), "Metrics")
    for outcome in ("completed", "truncated", "failed", "input_error"):
        assert f"`{outcome}`" in text


# ------------------------------------------------------------------------------ YAML specs


def spec_blocks() -> list[tuple[str, dict[str, Any]]]:
    blocks = []
    for path in DOC_FILES:
        for lang, body in FENCE.findall(path.read_text(encoding="utf-8")):
            if lang not in ("yaml", "yml"):
                continue
            for doc in yaml.safe_load_all(body):
                if isinstance(doc, dict) and doc.get("kind") in ("RolloutJob", "Dataset"):
                    blocks.append((f"{path.name}:{doc.get('metadata', {}).get('name')}", doc))
    return blocks


def test_the_guide_has_specs_of_both_kinds() -> None:
    found = {doc["kind"] for _, doc in spec_blocks()}
    assert found == {"RolloutJob", "Dataset"}


@pytest.mark.parametrize(("where", "doc"), spec_blocks(), ids=lambda v: str(v)[:40])
def test_every_spec_in_the_docs_parses(where: str, doc: dict[str, Any]) -> None:
    try:
        parse_resource(doc, where)
    except SpecError as exc:
        pytest.fail(str(exc))


# ------------------------------------------------------------------------------- commands


def command_mentions() -> list[tuple[str, str, str]]:
    found = []
    for path in DOC_FILES:
        for command, rest in GYMOPS.findall(path.read_text(encoding="utf-8")):
            found.append((path.name, command, rest))
    return found


def test_the_guide_names_commands() -> None:
    commands = {c for _, c, _ in command_mentions()}
    assert {"run", "demo"} <= commands


@pytest.mark.parametrize(("page", "command", "rest"), command_mentions())
def test_every_gymops_command_exists_with_its_flags(page: str, command: str, rest: str) -> None:
    assert command in cli.COMMANDS, f"{page}: `gymops {command}` is not a subcommand"
    sub = cli.build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    options = {s for action in sub._actions for s in action.option_strings}
    for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
        assert flag in options, f"{page}: `gymops {command} {flag}` is not a flag"


def test_every_kubectl_gymops_command_exists_with_its_flags() -> None:
    from gym_operator import cli_kubectl

    parser = cli_kubectl.build_parser()
    subs = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for path in DOC_FILES:
        for command, rest in KUBECTL_GYMOPS.findall(path.read_text(encoding="utf-8")):
            assert command in subs, f"{path.name}: `kubectl gymops {command}` does not exist"
            options = {
                s for a in [*parser._actions, *subs[command]._actions] for s in a.option_strings
            }
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                assert flag in options, f"{path.name}: `kubectl gymops {command} {flag}`"


# ---------------------------------------------------------------------------------- links


def links() -> list[tuple[Path, str]]:
    found = []
    for path in DOC_FILES:
        text = FENCE.sub("", path.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target):
                found.append((path, target))
    return found


@pytest.mark.parametrize(("page", "target"), links(), ids=lambda v: getattr(v, "name", v))
def test_every_relative_link_resolves(page: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    dest = (page.parent / file_part).resolve() if file_part else page
    assert dest.exists(), f"{page.name}: link to missing {target}"
    if anchor and dest.suffix == ".md":
        assert anchor in anchors(dest), f"{page.name}: no heading for #{anchor} in {dest.name}"


def test_own_pages_are_linked_from_the_index_and_readme() -> None:
    index = read("README.md")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in OWN_PAGES[:3]:
        assert f"]({page})" in index
        assert f"](docs/{page})" in readme


def test_readme_still_opens_with_the_two_entry_points() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:6]
    assert any(line.startswith("make demo") for line in head)
    assert any(line.startswith("make test") for line in head)


# ------------------------------------------------------------------------ formats and kinds


def test_support_table_matches_supported_kinds() -> None:
    text = read("integration.md")
    all_kinds = ("sft", "dpo", "rl", "kto")
    for fmt, supported in SUPPORTED_KINDS.items():
        match = re.search(rf"^\| `{re.escape(fmt)}` \|(.*)\|$", text, re.MULTILINE)
        assert match, f"no row for {fmt} in the support table"
        cells = [c.strip() for c in match.group(1).split("|")]
        assert len(cells) == len(all_kinds)
        for kind, cell in zip(all_kinds, cells, strict=True):
            assert cell.startswith("yes") == (kind in supported), f"{fmt}/{kind}: {cell!r}"


@pytest.mark.parametrize(("fmt", "kind"), [(f, k) for f, ks in SUPPORTED_KINDS.items() for k in ks])
def test_every_supported_combination_has_a_row_in_its_framework_section(
    fmt: str, kind: str
) -> None:
    body = section(read("integration.md"), SECTIONS[fmt])
    assert re.search(rf"^\| `{kind}` \|", body, re.MULTILINE), f"{fmt}: no row for kind {kind}"


TOOLS = [
    {
        "type": "function",
        "name": "calc",
        "description": "Add.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}}},
    }
]


@pytest.fixture(scope="module")
def exported_rows(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    """The first row of every supported (format, kind), exported from the same rollouts."""
    root = tmp_path_factory.mktemp("docs-export")
    rows = []
    for task in range(3):
        for rep, reward in enumerate((1.0, 0.0)):
            row = rollout_row(
                task,
                rep,
                f"The answer is {task * 2 + rep}.",
                reward,
                prompt=[{"role": "user", "content": f"What is {task} + {task}?"}],
                expected_answer=str(task * 2),
                task_type="math",
            )
            row["responses_create_params"]["tools"] = TOOLS
            rows.append(row)
    storage = Storage()
    source = f"file://{root}/rollouts"
    write_rollouts(storage, source, rows, num_repeats=2, spec={"verifier": {"builtin": "math"}})
    out = {}
    for fmt, supported in SUPPORTED_KINDS.items():
        for kind in supported:
            file_format = "parquet" if (fmt, kind) == ("verl", "sft") else "jsonl"
            spec = DatasetSpec.model_validate(
                {
                    "sources": [{"uri": source}],
                    "kind": kind,
                    "format": fmt,
                    "output": {"uri": f"file://{root}/{fmt}-{kind}", "fileFormat": file_format},
                }
            )
            summary = build_dataset(
                spec, name="docs", source_uris=[source], output_uri=spec.output.uri,
                storage=storage,
            )  # fmt: skip
            first = summary.files[0].removeprefix("file://")
            if first.endswith(".parquet"):
                out[(fmt, kind)] = pq.read_table(first).to_pylist()[0]
            else:
                out[(fmt, kind)] = json.loads(Path(first).read_text().splitlines()[0])
    return out


@pytest.mark.parametrize(("fmt", "kind"), [(f, k) for f, ks in SUPPORTED_KINDS.items() for k in ks])
def test_every_column_the_exporter_writes_is_documented(
    exported_rows: dict[tuple[str, str], dict], fmt: str, kind: str
) -> None:
    body = section(read("integration.md"), SECTIONS[fmt])
    row = exported_rows[(fmt, kind)]
    keys = set(row) - TASK_FIELDS
    for value in row.values():
        if isinstance(value, dict):
            keys |= set(value) - TASK_FIELDS
    for key in sorted(keys):
        assert f"`{key}`" in body or f'"{key}"' in body, f"{fmt}/{kind}: column {key} undocumented"


# ------------------------------------------------------------------ concepts: named things


def test_failure_classes_are_documented() -> None:
    body = section(read("concepts.md"), "Retries, the retry budget and AIMD on 429")
    for name in (
        FailureClass.TIMEOUT,
        FailureClass.CONNECTION,
        FailureClass.HTTP_5XX,
        FailureClass.HTTP_429,
        FailureClass.HTTP_4XX,
        FailureClass.MALFORMED,
        FailureClass.VERIFIER_UNSCORABLE,
    ):
        assert f"`{name}`" in body


def test_dataset_drop_reasons_are_documented() -> None:
    body = section(read("concepts.md"), "Datasets: filters, selection, splits, the card")
    reasons = [
        value
        for module in (filters, kinds)
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, str) and re.fullmatch(r"[a-z_]+", value)
    ]
    assert "balance_cap" in reasons and "not_selected" in reasons
    for reason in reasons:
        assert f"`{reason}`" in body, reason


def test_phases_conditions_and_reasons_are_documented() -> None:
    body = section(read("concepts.md"), "Status: phases, conditions, events")
    names = [phase.value for phase in Phase] + list(constants.ASPECT_CONDITIONS)
    names += [v for k, v in vars(constants).items() if k.startswith("REASON_")]
    names += [constants.CONDITION_SPEC_ACCEPTED, *constants.POD_PROBLEM_REASONS]
    for name in names:
        assert f"`{name}`" in body, name


def test_mutable_fields_are_the_documented_ones() -> None:
    body = section(read("concepts.md"), "What may change on a running job")
    for field in constants.MUTABLE_SPEC_FIELDS:
        assert f"`spec.{field}`" in body


def test_quickstart_describes_the_shipped_demo() -> None:
    from gym_operator.api import load_resource
    from gym_operator.cli_demo import DATASET_FILE, JOB_FILE, TASKS_FILE, sample_path

    text = section(read("quickstart.md"), "1. The embedded demo: `make demo`")
    job = load_resource(sample_path(JOB_FILE))
    dataset = load_resource(sample_path(DATASET_FILE))
    tasks = sample_path(TASKS_FILE).read_text(encoding="utf-8").splitlines()
    assert f"{job.spec.sampling.num_repeats} answers to each of the {len(tasks)} tasks" in text
    assert f"built-in `{job.spec.verifier.builtin}`" in text
    assert dataset.spec.kind == "sft" and dataset.spec.format == "trl"
    assert f"about {round(dataset.spec.split.validation_fraction * 100)}% of the tasks" in text
    for name in (JOB_FILE, DATASET_FILE, TASKS_FILE):
        assert f"operator/gym_operator/samples/{name}" in text


def test_retry_defaults_table_matches_the_spec() -> None:
    from gym_operator.api.rolloutjob import RetrySpec

    body = section(read("concepts.md"), "Retries, the retry budget and AIMD on 429")
    defaults = RetrySpec().wire()
    for name, value in defaults.items():
        match = re.search(rf"^\| `{name}` \| ([^|]+) \|", body, re.MULTILINE)
        assert match, f"retry.{name} is not in the table"
        assert float(match.group(1)) == float(value), name


def test_exit_codes_in_the_quickstart_match_the_entrypoint() -> None:
    from gym_operator.errors import ExitCode as code

    text = read("quickstart.md")
    assert (
        f"Exit codes: {code.OK:d} done, {code.ERROR:d} unexpected error, {code.BAD_SPEC:d} bad"
        f" spec or arguments, {code.INTERRUPTED:d} interrupted (resumable),\n{code.CONFLICT:d}"
        f" the output prefix belongs to another spec, {code.ENDPOINT_DOWN:d} the model or verifier"
        " endpoint failed\n`retry.endpointFailureLimit` rollouts in a row" in text
    )

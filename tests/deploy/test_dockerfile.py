"""The Dockerfile (cannot be built here: no Docker engine) is multi-stage, pinned and non-root."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from deploykit import ROOT, Manifest, one

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps a path out of the build context (last matching rule wins)."""
    excluded = False
    for rule in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            excluded = not negate
    return excluded


def test_multi_stage_with_the_runtime_last() -> None:
    stages = [args for word, args in instructions() if word == "FROM"]
    assert len(stages) >= 2
    assert stages[-1].endswith("AS runtime")
    copies = [args for word, args in instructions() if word == "COPY"]
    assert any(c.startswith("--from=build ") for c in copies)


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [args for word, args in instructions() if word == "USER"]
    assert users, "no USER: the container would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0
    assert not gid or (gid.isdigit() and int(gid) > 0)


def test_installs_under_the_pinned_constraints() -> None:
    runs = [args for word, args in instructions() if word == "RUN" and "pip install" in args]
    package_installs = [r for r in runs if "-r requirements.txt" in r or re.search(r" \.(\s|$)", r)]
    assert package_installs
    assert all("-c constraints.txt" in r for r in package_installs)


def test_copied_files_exist_and_reach_the_build_context() -> None:
    for word, args in instructions():
        if word != "COPY" or args.startswith("--from="):
            continue
        *sources, _ = args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not dockerignore_excludes(source), f".dockerignore drops {source}"
    assert dockerignore_excludes(".venv") and dockerignore_excludes(".git")


def test_entrypoint_is_the_cli_the_chart_calls(render: Callable[..., list[Manifest]]) -> None:
    entrypoints = [args for word, args in instructions() if word == "ENTRYPOINT"]
    assert entrypoints[-1] == '["gymops"]'
    deployment = one(render(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["gymops"]
    user = [args for word, args in instructions() if word == "USER"][-1]
    assert pod["securityContext"]["runAsUser"] == int(user.split(":")[0])

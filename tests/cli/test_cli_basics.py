"""What people expect of a CLI: --version, usage of the right subcommand, one-line errors,
completion, multi-document files, validate, status and show."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from clikit import gymops, math_task, output_of, write_job, write_tasks

from gym_operator.testing.stub_model import StubModel


def test_version() -> None:
    proc = gymops("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("gymops ")


def test_a_mistyped_flag_shows_the_subcommands_usage_and_a_guess() -> None:
    proc = gymops("demo", "--limt", "3")
    assert proc.returncode == 2
    assert "usage: gymops demo" in proc.stderr
    assert "did you mean --limit?" in proc.stderr


def test_a_bad_log_level_is_a_usage_error_not_a_traceback() -> None:
    proc = gymops("--log-level", "verbose", "run", "x.yaml")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_s3_credentials_are_one_line_naming_the_object_and_the_fix(
    tmp_path: Path,
) -> None:
    job = write_job(
        tmp_path / "job.yaml",
        tasks=Path("unused"),
        output=tmp_path / "out",
        base_url="http://127.0.0.1:9/v1",
        input={"uri": "s3://no-such-bucket/tasks.jsonl"},
    )
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    proc = gymops("run", str(job), "--no-progress", env=env, timeout=120)
    text = output_of(proc)
    assert proc.returncode == 1, text
    assert "Traceback" not in text
    assert "s3://no-such-bucket/tasks.jsonl" in text and "AWS_ACCESS_KEY_ID" in text
    assert "credentialsSecretRef" in text


def test_bash_completion_completes_subcommands_and_flags() -> None:
    script = gymops("completion", "bash").stdout
    probe = (
        script
        + "\nCOMP_WORDS=(gymops sta); COMP_CWORD=1; _gymops; echo ${COMPREPLY[@]}"
        + "\nCOMP_WORDS=(gymops run --no); COMP_CWORD=2; _gymops; echo ${COMPREPLY[@]}"
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["status", "--no-progress"]


def test_verify_server_binds_loopback_unless_told() -> None:
    proc = gymops("verify-server", "--help")
    assert "default 127.0.0.1" in " ".join(proc.stdout.split())


def _pair(tmp_path: Path, url: str) -> Path:
    tasks = write_tasks(tmp_path / "tasks.jsonl", [math_task(i) for i in range(4)])
    job_file = write_job(tmp_path / "job.yaml", tasks=tasks, output=tmp_path / "out", base_url=url)
    job = yaml.safe_load(job_file.read_text())
    job["metadata"] = {"name": "sums"}
    dataset = {
        "apiVersion": "gymops.dev/v1alpha1",
        "kind": "Dataset",
        "metadata": {"name": "sums-rl"},
        "spec": {
            "sources": [{"rolloutJobRef": "sums"}],
            "kind": "rl",
            "format": "nemo-gym",
            "output": {"uri": str(tmp_path / "dataset")},
            "filters": {"passRate": {"min": 0.0, "max": 1.0}},
        },
    }
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump_all([job, dataset]))
    return both


def test_a_rolloutjob_and_its_dataset_in_one_file_run_in_order(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    both = _pair(tmp_path, url)
    assert gymops("validate", str(both)).returncode == 0
    proc = gymops("run", str(both), "--no-progress")
    assert proc.returncode == 0, output_of(proc)
    assert (tmp_path / "out" / "_SUCCESS").exists()
    assert (tmp_path / "dataset" / "_DATASET.json").exists()


def test_generate_still_wants_one_resource_and_says_why(
    tmp_path: Path, stub: tuple[StubModel, str]
) -> None:
    _, url = stub
    proc = gymops("generate", "--spec", str(_pair(tmp_path, url)), "--shard", "0/1")
    assert proc.returncode == 2
    assert "found 2 documents" in output_of(proc)


def test_validate_names_every_problem_offline(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    write_job(
        bad,
        tasks=Path("t.jsonl"),
        output=Path("out"),
        base_url="http://m/v1",
        verifier={"builtin": "math", "config": {"extraction": "boxd"}},
        sampling={"numRepeats": 0},
    )
    proc = gymops("validate", str(bad))
    text = output_of(proc)
    assert proc.returncode == 2
    assert "spec.sampling.numRepeats" in text
    assert "config.extraction" in text
    assert "CRD schema: spec.sampling.numRepeats" in text  # what kubectl apply would refuse


def test_status_and_show_read_a_finished_job(tmp_path: Path, stub: tuple[StubModel, str]) -> None:
    _, url = stub
    rows = [math_task(i) for i in range(3)]
    rows[2]["responses_create_params"]["input"][0]["content"] += " #fault:400"
    tasks = write_tasks(tmp_path / "tasks.jsonl", rows)
    out = tmp_path / "out"
    job = write_job(tmp_path / "job.yaml", tasks=tasks, output=out, base_url=url)
    assert gymops("run", str(job), "--no-progress").returncode == 0

    status = gymops("status", str(out))
    text = output_of(status)
    assert status.returncode == 0, text
    assert "6/6 (100.0%)" in text
    assert "http_4xx" in text and "HTTP 400" in text
    assert "_SUCCESS" in text and "yes" in text

    show = gymops("show", str(out), "--task", "1")
    text = output_of(show)
    assert show.returncode == 0, text
    assert "task 1 (expected 3)" in text
    assert "repeat 0" in text and "repeat 1" in text

    assert gymops("status", str(tmp_path)).returncode == 2

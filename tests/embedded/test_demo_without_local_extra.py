"""Without the `local` extra, `gymops demo` says how to install it and starts nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The interpreter as it is when llama-cpp-python is not installed: `import llama_cpp` fails.
WITHOUT_LLAMA = (
    "import sys; sys.modules['llama_cpp'] = None; from gym_operator.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def test_demo_without_llama_cpp_names_the_install_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LLAMA, "demo", "--output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 1
    assert "pip install -e .[local]" in done.stdout, done.stdout + done.stderr
    assert "missing llama_cpp" in done.stdout
    assert not (tmp_path / "out").exists()

"""Fixtures of the viewer tests: a real job's output and Dataset, the viewer, headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import viewerkit

from gym_operator.testing.stub_model import StubConfig, StubModel, serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> viewerkit.Outputs:
    """The RolloutJob run by `gymops run` on the stub model, then the DPO Dataset over it."""
    workdir = tmp_path_factory.mktemp("viewer-job")
    old = os.umask(0o022)
    try:
        with serve_in_thread(StubModel(StubConfig())) as stub_url:
            with viewerkit.model_front(stub_url) as url:
                job, dataset = viewerkit.write_specs(workdir, url)
                viewerkit.run_cli("run", str(job), "--no-progress")
                viewerkit.run_cli("run", str(dataset))
    finally:
        os.umask(old)
    return viewerkit.Outputs(workdir, workdir / "rollouts", workdir / "dataset")


@pytest.fixture(scope="session")
def served(outputs: viewerkit.Outputs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`gymops view` over the rollouts (view 0) and the dataset (view 1); yields its URL."""
    cache_dir = tmp_path_factory.mktemp("viewer-cache")
    with viewerkit.viewer(str(outputs.rollouts), str(outputs.dataset), cache_dir=cache_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (nothing downloaded). Module-scoped:
    Playwright's sync API holds an event loop in this thread until it stops, which would break
    the asyncio tests of other modules."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where pages are saved as PNG (GYMOPS_SCREENSHOTS, else a temporary folder)."""
    chosen = os.environ.get("GYMOPS_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; fails the test on any script error in it."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(60_000)
    yield tab
    context.close()
    assert not errors, f"script errors on the page: {errors}"

"""The viewer in headless Chromium over a real job's output: what a person sees and clicks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import viewerkit
from playwright.sync_api import expect

WAIT = 60_000


def card_value(page: Any, name: str) -> Any:
    return page.locator(f'[data-card="{name}"] .n')


def images_loaded(page: Any, selector: str) -> None:
    page.wait_for_function(
        f"""() => {{
            const imgs = [...document.querySelectorAll({json.dumps(selector)})];
            return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
        }}""",
        timeout=WAIT,
    )


def test_overview_shows_counts_failures_and_charts(
    page: Any, served: str, outputs: viewerkit.Outputs, screenshots: Path
) -> None:
    page.goto(served + "#/v/0")
    expect(card_value(page, "rollouts")).to_have_text("32", timeout=WAIT)
    expect(card_value(page, "failures")).to_have_text("8")
    expect(card_value(page, "truncated")).to_have_text("4")
    expect(card_value(page, "tools")).to_have_text("8")
    expect(card_value(page, "tasks")).to_have_text("10")
    expect(card_value(page, "badInput")).to_have_text("1")
    expect(card_value(page, "passRate")).to_have_text("56.3%")
    expect(page.locator("#job-status")).to_contain_text("_SUCCESS written")
    digest = json.loads((outputs.rollouts / "_job.json").read_text())["digest"]
    expect(page.locator("#digest")).to_have_text(digest[:16])
    failures = page.locator("#failure-classes")
    expect(failures).to_contain_text("http_4xx")
    expect(failures).to_contain_text("injected 400")
    expect(failures).to_contain_text("verifier_unscorable")
    expect(failures).to_contain_text("no 'expected_answer' field")
    types = page.locator("#task-types")
    expect(types.locator("tr", has_text="calculator")).to_contain_text("100.0%")
    expect(types.locator("tr", has_text="sum")).to_contain_text("41.7%")
    images_loaded(page, ".charts img")
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)


def test_filter_to_failures_and_open_a_task(page: Any, served: str, screenshots: Path) -> None:
    page.goto(served + "#/v/0/rollouts")
    expect(page.locator("#row-count")).to_contain_text("41 rows", timeout=WAIT)
    page.select_option("select[name=failure]", "any")
    page.click("#apply")
    expect(page.locator("#row-count")).to_contain_text("9 rows", timeout=WAIT)
    rows = page.locator("#rollouts tr.clickable")
    expect(rows).to_have_count(9)
    classes = ("http_4xx", "verifier_unscorable", "bad_input")
    for text in rows.all_inner_texts():
        assert any(name in text for name in classes), text
    expect(rows.filter(has_text="bad_input")).to_contain_text("line 11")
    page.screenshot(path=str(screenshots / "failures.png"), full_page=True)
    rows.filter(has_text="http_4xx").first.click()
    expect(page.locator("h1")).to_have_text("Task 5", timeout=WAIT)
    repeats = page.locator("#repeats .repeat")
    expect(repeats).to_have_count(4)
    for text in repeats.all_inner_texts():
        assert "http_4xx" in text and "injected 400" in text


def test_task_page_shows_repeats_side_by_side_with_tool_calls(
    page: Any, served: str, screenshots: Path
) -> None:
    page.goto(served + f"#/v/0/task/{viewerkit.TOOL_TASKS[0]}")
    repeats = page.locator("#repeats .repeat")
    expect(repeats).to_have_count(4, timeout=WAIT)
    answer = str(viewerkit.TOOL_TASKS[0] * 7)
    for i in range(4):
        box = page.locator(f"#repeat-{i}")
        expect(box.locator(".turn.user")).to_contain_text("Use the calculator")
        expect(box.locator(".turn.tool_call")).to_contain_text("tool call: calculator")
        expect(box.locator(".turn.tool_output")).to_contain_text(f'"result": "{answer}"')
        expect(box.locator(".turn.assistant.message")).to_contain_text(f"#### {answer}")
        expect(box.locator(".pill.pass")).to_have_text("reward 1.00")
        expect(box).to_contain_text("expected_answer")
    boxes = [repeats.nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]  # side by side
    page.screenshot(path=str(screenshots / "task.png"), full_page=True)

    page.goto(served + f"#/v/0/task/{viewerkit.TRUNCATED_TASK}")
    expect(page.locator("#repeats .repeat")).to_have_count(4, timeout=WAIT)
    expect(page.locator("#repeats .pill.warn")).to_have_count(4)
    expect(page.locator("#repeat-0 .turn.system")).to_contain_text("Answer with '#### <number>'")


@pytest.mark.parametrize(
    ("query", "expected_rows", "must_contain"),
    [
        ("reward_min=1", 18, None),
        ("truncated=yes", 4, "truncated"),
        ("task_type=calculator", 8, "calculator"),
        ("q=use+the+calculator", 8, "Use the calculator"),
        ("failure=none&sort=reward&order=desc", 32, None),
    ],
)
def test_table_filters(
    page: Any, served: str, query: str, expected_rows: int, must_contain: str | None
) -> None:
    page.goto(served + f"#/v/0/rollouts?{query}")
    expect(page.locator("#row-count")).to_contain_text(f"{expected_rows} rows", timeout=WAIT)
    texts = page.locator("#rollouts tr.clickable").all_inner_texts()
    assert len(texts) == min(expected_rows, 50)
    if must_contain:
        assert all(must_contain in t for t in texts)
    if "order=desc" in query:
        rewards = [float(t.split("\t")[3]) for t in texts]
        assert rewards == sorted(rewards, reverse=True) and rewards[0] == 1.0


def test_dataset_page_and_a_dpo_pair(
    page: Any, served: str, outputs: viewerkit.Outputs, screenshots: Path
) -> None:
    summary = json.loads((outputs.dataset / "_DATASET.json").read_text())
    page.goto(served + "#/v/1")
    expect(card_value(page, "input")).to_have_text(str(summary["counts"]["input"]), timeout=WAIT)
    expect(card_value(page, "kept")).to_have_text(str(summary["counts"]["kept"]))
    expect(card_value(page, "train")).to_have_text(str(summary["splits"]["train"]))
    expect(card_value(page, "validation")).to_have_text(str(summary["splits"]["validation"]))
    for reason, count in summary["counts"]["dropped"].items():
        expect(page.locator("#dropped tr", has_text=reason)).to_contain_text(str(count))
    expect(page.locator("#card").get_by_role("heading", name="Sources")).to_be_visible()
    images_loaded(page, "#card img")
    page.screenshot(path=str(screenshots / "dataset.png"), full_page=True)

    first = json.loads((outputs.dataset / "train-00000.jsonl").read_text().splitlines()[0])
    page.locator("#dataset-rows tr.clickable").first.click()
    pair = page.locator("#dataset-row")
    expect(pair.locator(".side.chosen h3")).to_have_text("chosen", timeout=WAIT)
    expect(pair.locator(".side.chosen")).to_contain_text(first["chosen"][-1]["content"].strip())
    expect(pair.locator(".side.rejected")).to_contain_text(first["rejected"][-1]["content"].strip())
    expect(pair).to_contain_text(first["prompt"][-1]["content"])
    chosen = pair.locator(".side.chosen").bounding_box()
    rejected = pair.locator(".side.rejected").bounding_box()
    assert chosen["y"] == rejected["y"] and chosen["x"] < rejected["x"]  # beside each other
    page.screenshot(path=str(screenshots / "dpo-pair.png"), full_page=True)

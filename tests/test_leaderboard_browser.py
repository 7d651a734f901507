"""The leaderboard page in a real headless Chromium (Debian's `chromium`; installed by
scripts/install_browser.sh when missing, never skipped): it loads without console errors, header
clicks sort, the open/closed filter and the name filter filter, a hostile model name runs no
script, links open the drill-down. A full-page screenshot is kept as an artifact
(tests/artifacts/leaderboard.png, or $EVALBOARD_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import synthetic_runs as synthetic
from evalboard.leaderboard.build import build_leaderboard
from evalboard.records.run_record import SampleLine
from leaderboard_browser import Browser
from leaderboard_helpers import HOSTILE_ANSWER, HOSTILE_LABEL, evaluate_tiny

ARTIFACTS = Path(os.environ.get("EVALBOARD_TEST_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")


@pytest.fixture(scope="module")
def page(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lb-browser")
    results = root / "results"
    evaluate_tiny(tiny_model, ["arc_easy", "hellaswag"], results, limit=8, label="tiny-llama (real run)")
    zoo = synthetic.model_zoo(14, seed=2)
    tasks = {"arc_easy": 60, "hellaswag": 80, "gsm8k": 40}
    synthetic.write_store(results, zoo, tasks)
    hostile = synthetic.SyntheticModel(HOSTILE_LABEL, 0.4, open_weights=False, cost_per_item_usd=0.002,
                                       latency_s=1.2, tokens_per_s=55.0)

    def plant(task: str, line: SampleLine) -> None:
        if task == "gsm8k" and line.index == 0:
            line.responses[0].text = HOSTILE_ANSWER

    synthetic.write_run(results, hostile, tasks, "2025-06-01T00:00:00+00:00", edit=plant)
    output = root / "site" / "index.html"
    build_leaderboard(results, output, rounds=200, cache=False)
    return output


@pytest.fixture(scope="module")
def browser() -> Browser:
    with Browser(width=1400, height=900) as b:
        b.call("Browser.setDownloadBehavior", {"behavior": "deny"}, session=False)
        yield b


ROWS = "Array.from(document.querySelectorAll('#score-table tbody tr'))"


def _visible(browser: Browser) -> list[dict]:
    return browser.evaluate(
        f"{ROWS}.filter(r => getComputedStyle(r).display !== 'none')"
        ".map(r => ({model: r.getAttribute('data-model'), access: r.getAttribute('data-access')}))")


def _column_values(browser: Browser, header_text: str) -> list[float | None]:
    return browser.evaluate(f"""(() => {{
        const ths = Array.from(document.querySelectorAll('#score-table thead th'));
        const index = ths.findIndex(th => th.textContent.trim().startsWith({json.dumps(header_text)}));
        return {ROWS}.map(r => {{ const v = r.cells[index].getAttribute('data-v'); return v === '' ? null : parseFloat(v); }});
    }})()""")


def _header_button(browser: Browser, header_text: str) -> str:
    index = browser.evaluate(
        f"Array.from(document.querySelectorAll('#score-table thead th'))"
        f".findIndex(th => th.textContent.trim().startsWith({json.dumps(header_text)}))")
    assert index >= 0, header_text
    return f"#score-table thead th:nth-child({index + 1}) button.sort"


def test_page_loads_cleanly_and_looks_right(page: Path, browser: Browser) -> None:
    browser.open(page)
    assert browser.problems() == []
    assert browser.evaluate("document.querySelectorAll('#score-table tbody tr').length") == 16
    assert browser.evaluate("window.__pwned") is None
    shot = browser.screenshot(ARTIFACTS / "leaderboard.png")
    assert shot.stat().st_size > 50_000
    assert browser.problems() == []


def test_clicking_a_header_sorts_the_table(page: Path, browser: Browser) -> None:
    browser.open(page)
    browser.click(_header_button(browser, "Average"))
    values = _column_values(browser, "Average")
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True) and values[: len(present)] == present
    browser.click(_header_button(browser, "Average"))
    values = _column_values(browser, "Average")
    assert [v for v in values if v is not None] == sorted(v for v in values if v is not None)
    browser.click(_header_button(browser, "gsm8k"))  # a task column
    gsm = [v for v in _column_values(browser, "gsm8k") if v is not None]
    assert len(gsm) == 15 and gsm == sorted(gsm, reverse=True)
    browser.click(_header_button(browser, "Model"))
    names = [r["model"] for r in _visible(browser)]
    assert names == sorted(names, key=str.lower)
    assert browser.evaluate("document.querySelector('#score-table th[aria-sort]').textContent").startswith("Model")
    assert browser.problems() == []


def test_open_closed_and_name_filters(page: Path, browser: Browser) -> None:
    browser.open(page)
    everything = _visible(browser)
    closed = [r for r in everything if r["access"] == "closed"]
    assert 0 < len(closed) < len(everything)
    browser.click('#access-filter label:nth-of-type(3)')  # "Closed"
    assert _visible(browser) == closed
    assert browser.evaluate("document.getElementById('shown-count').textContent") == f"{len(closed)} of 16 models"
    hidden_points = browser.evaluate(
        "Array.from(document.querySelectorAll('#cost g.point')).filter(g => getComputedStyle(g).display === 'none')"
        ".map(g => g.getAttribute('data-access'))")
    assert hidden_points and set(hidden_points) == {"open"}
    browser.click('#access-filter label:nth-of-type(2)')  # "Open"
    assert {r["access"] for r in _visible(browser)} == {"open"}
    browser.click('#access-filter label:nth-of-type(1)')  # "All"
    assert len(_visible(browser)) == len(everything)
    browser.click("#model-search")
    browser.call("Input.insertText", {"text": "api-model"})
    assert {r["model"][:9] for r in _visible(browser)} == {"api-model"}
    assert browser.problems() == []


def test_hostile_names_are_text_and_links_open_the_drill_down(page: Path, browser: Browser) -> None:
    browser.open(page)
    text = browser.evaluate(
        f"{ROWS}.find(r => r.getAttribute('data-model').startsWith('<script>')).querySelector('a').textContent")
    assert text == HOSTILE_LABEL
    browser.click("#score-table tbody tr[data-access='closed'] a.model-link[href^='#model-script']")
    details = browser.evaluate("new Promise(done => requestAnimationFrame(() => {"
                               " const d = document.querySelector('details[open]');"
                               " done(d && d.getAttribute('data-model')); }))")
    assert details == HOSTILE_LABEL
    answer = browser.evaluate("Array.from(document.querySelectorAll('details[open] pre')).map(p => p.textContent)")
    assert HOSTILE_ANSWER in answer
    browser.evaluate("(() => { const s = document.querySelector('select[data-switch=ratings]');"
                     " s.value = s.options[1].value; s.dispatchEvent(new Event('change')); })()")
    visible_panels = browser.evaluate(
        "Array.from(document.querySelectorAll('[data-panel=ratings]')).filter(p => !p.hidden).length")
    assert visible_panels == 1
    browser.click("button[data-download=csv]")
    assert browser.evaluate("window.__pwned") is None
    assert browser.problems() == []


def test_an_empty_store_gives_a_working_page(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    build_leaderboard(tmp_path / "results", tmp_path / "site" / "index.html", rounds=10, cache=False)
    browser.open(tmp_path / "site" / "index.html")
    assert browser.problems() == []
    assert "No runs in the results store yet" in browser.evaluate("document.body.textContent")

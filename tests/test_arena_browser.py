"""The Arena section in a real headless Chromium: Chatbot Arena's real human battles (imported from
leaderbot's counts) and a judged Arena-Hard v2.0 arena (the real baselines' answers and chance
candidates, judged through the OpenAI protocol server by a scripted judge that prefers the longer
answer). It loads without console errors, the drill-down opens, and a screenshot is kept as an
artifact (tests/artifacts/arena.png; docs/arena-screenshot.png is a copy of it)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from evalboard.arena.battles import ArenaConfig, run_arena
from evalboard.arena.imports import read_battles
from evalboard.leaderboard.build import build_leaderboard
from evalboard.paths import package_root, response_cache_path
from evalboard.records.arena_record import save_arena
from leaderboard_browser import Browser
from servers.fixtures import KEY_ENV, KEYS, MODELS, adapters_closed_after_test, make_server, server_url  # noqa: F401

ARTIFACTS = Path(os.environ.get("EVALBOARD_TEST_ARTIFACTS") or Path(__file__).resolve().parent / "artifacts")


def prefers_longer(messages: Sequence[tuple[str, str]]) -> str:
    text = messages[-1][1]
    if "<|The Start of Assistant A's Answer|>" not in text:
        return "OK"
    a = text.split("<|The Start of Assistant A's Answer|>")[1].split("<|The End of Assistant A's Answer|>")[0]
    b = text.split("<|The Start of Assistant B's Answer|>")[1].split("<|The End of Assistant B's Answer|>")[0]
    if abs(len(a) - len(b)) < 200:
        return f"The answers are close ({len(a)} vs {len(b)} characters). [[A=B]]"
    longer = "A" if len(a) > len(b) else "B"
    other = "B" if longer == "A" else "A"
    strength = ">>" if abs(len(a) - len(b)) > 2000 else ">"
    return f"Assistant {longer}'s answer is more complete. My final verdict is [[{longer}{strength}{other}]]."


def test_the_arena_section_in_a_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    root = package_root("leaderbot")
    assert root is not None
    save_arena(results, read_battles(root / "data" / "chatbotarena_20240814.json", "chatbot-arena-20240814"))
    with make_server("openai", responder=prefers_longer) as judge_srv:
        monkeypatch.setenv(KEY_ENV["openai"], KEYS["openai"])
        judge = f"openai:{MODELS['openai']},base_url={server_url(judge_srv)},backoff=0.01"
        run_arena(ArenaConfig(prompt_set="arena-hard-v2.0", name="arena-hard-demo", judges=[judge],
                              models=["o3-mini-2025-01-31", "gemini-2.0-flash-001", "chance:0"], results=results,
                              limit=6, max_new_tokens=8, cache_path=response_cache_path()))
    page = build_leaderboard(results, tmp_path / "site" / "index.html", rounds=50).page
    with Browser(width=1300, height=1500) as browser:
        browser.open(page)
        assert browser.problems() == []
        assert browser.evaluate("document.querySelectorAll('#arena .arena').length") == 2
        assert browser.evaluate("document.querySelectorAll('#arena table.heatmap').length") == 2
        browser.evaluate("document.querySelector('#arena details.battle').open = true")
        assert browser.evaluate("document.querySelector('#arena details.battle pre').textContent.length") > 0
        browser.evaluate("document.querySelector('#arena').scrollIntoView()")
        shot = browser.screenshot(ARTIFACTS / "arena.png", full_page=False)
        assert shot.stat().st_size > 20_000
        assert browser.problems() == []

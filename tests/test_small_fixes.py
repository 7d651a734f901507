"""Small things a user notices: the progress bar cleared before the summary, a warning when every
generation is empty, offline advice that is not circular, an adapter folder given as the model,
`leaderboard build --results DIR` / `--config`, no empty cost chart, and `evalboard tasks` aligned."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import evalboard
import pytest
import synthetic_runs as synthetic
from evalboard import cli
from evalboard.cli.progress import ERASE_LINE, clear_progress
from evalboard.engine.empty_answers import all_generations_empty
from evalboard.errors import UserError
from evalboard.records.run_record import SampleLine


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_line_is_erased_before_the_summary_on_a_terminal() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    clear_progress(terminal)
    clear_progress(pipe)
    assert terminal.getvalue() == ERASE_LINE and pipe.getvalue() == ""


def test_every_generation_empty_warns_and_suggests_the_chat_template(caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A served model that answers nothing (as an instruct model without its template does) is
    warned about; the chance baseline, blank by design, is not."""
    from servers.fixtures import MODELS, make_server

    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    with make_server("openai", api_key=None, responder=lambda messages: "") as server, \
            caplog.at_level(logging.WARNING):
        evalboard.evaluate(f"openai-compatible:{server.base_url}#{MODELS['openai']}", "gsm8k", num_fewshot=0,
                           limit=2, output_dir=None, cache=False)
    (message,) = [r.getMessage() for r in caplog.records if "came back empty" in r.getMessage()]
    assert "every generation of task gsm8k came back empty (2 items)" in message
    assert "--apply-chat-template" in message
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        evalboard.evaluate("chance:1", "gsm8k", num_fewshot=0, limit=2, output_dir=None)
    assert not [r for r in caplog.records if "came back empty" in r.getMessage()]
    answered = SampleLine(index=0, doc_id=0, responses=[{"text": " 42"}])
    assert not all_generations_empty([answered]) and not all_generations_empty([SampleLine(index=0, doc_id=0)])


def test_offline_advice_for_a_split_no_package_ships_is_not_circular() -> None:
    with pytest.raises(UserError) as caught:
        evalboard.evaluate("chance:1", "gsm8k", data_source="offline", limit=1, output_dir=None)
    text = str(caught.value)
    assert "try --data-source hub" not in text
    assert "--data-source offline cannot provide it" in text and "--data-dir" in text


def test_an_adapter_folder_given_as_the_model_suggests_adapter(tmp_path: Path) -> None:
    adapter = tmp_path / "my-lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base-model"}))
    with pytest.raises(UserError, match=f"hf:org/base-model,adapter={adapter}"):
        evalboard.evaluate(f"hf:{adapter}", "arc_easy", limit=1, output_dir=None)


def _store(results: Path, closed: bool) -> None:
    models = [synthetic.SyntheticModel("open-a", 0.2, parameters=10**8, cost_per_item_usd=0.0),
              synthetic.SyntheticModel("open-b", 0.5, parameters=10**9, cost_per_item_usd=0.0)]
    if closed:
        models.append(synthetic.SyntheticModel("api-c", 0.8, open_weights=False, cost_per_item_usd=0.001))
    synthetic.write_store(results, models, {"syn_mc": 6})


def test_build_writes_inside_the_results_folder_and_reads_config(tmp_path: Path, capsys) -> None:
    results = tmp_path / "store"
    _store(results, closed=False)
    assert cli.main(["leaderboard", "build", "--results", str(results), "--rounds", "0"]) == 0
    page = results / "leaderboard" / "index.html"
    html = page.read_text()
    assert f"wrote {page}" in capsys.readouterr().out
    # no priced model: a one-line note instead of a large chart with one vertical line of points
    assert 'id="no-cost"' in html and 'aria-label="Average score against cost' not in html
    config = tmp_path / "board.yaml"
    config.write_text(f"results: {results}\noutput: {tmp_path / 'site' / 'board.html'}\ntitle: Nightly board\n"
                      f"bootstrap_rounds: 0\nmodels: [chance:1]\ntasks: [syn_mc]\n")
    assert cli.main(["leaderboard", "build", "--config", str(config)]) == 0
    built = (tmp_path / "site" / "board.html").read_text()
    assert "<title>Nightly board" in built
    assert cli.main(["leaderboard", "build", "--config", str(config), "--title", "Flag wins"]) == 0
    assert "<title>Flag wins" in (tmp_path / "site" / "board.html").read_text()


def test_the_cost_chart_is_drawn_once_a_priced_model_is_there(tmp_path: Path) -> None:
    results = tmp_path / "store"
    _store(results, closed=True)
    assert cli.main(["leaderboard", "build", "--results", str(results), "--rounds", "0"]) == 0
    html = (results / "leaderboard" / "index.html").read_text()
    assert 'aria-label="Average score against cost' in html and 'id="no-cost"' not in html


def test_tasks_listing_is_aligned() -> None:
    out = subprocess.run([sys.executable, "-m", "evalboard.cli", "tasks"], capture_output=True, text=True,
                         check=True).stdout
    header, *lines = out.splitlines()
    rows = [line for line in lines if " is a group of " not in line]
    groups = [line for line in lines if " is a group of " in line]
    assert any(line.startswith("mmlu is a group of 57 tasks, ") for line in groups), lines[-3:]
    starts = [header.index(word) for word in ("type", "mirrors", "description")]
    items_end = header.index("items") + len("items")
    assert len(rows) >= 10
    for row in rows:
        assert row[items_end - 1] != " " and row[items_end] == " ", row  # counts right-aligned under "items"
        for start in starts:
            assert row[start - 2:start] == "  " and row[start] != " ", row

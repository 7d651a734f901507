"""`openai-compatible:` claims loglikelihoods only when it has the tokenizer that scoring them needs
(the choices are cut into tokens here), so `--formulation auto` asks a server without one for a
letter instead of failing at request time. Against the local OpenAI-protocol server."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pytest
from evalboard.errors import UserError
from evalboard.models.adapters.base import Capabilities, load_adapter
from servers.fixtures import KEYS, MODELS, adapters_closed_after_test, make_server  # noqa: F401 (fixture)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", KEYS["openai"])
    with make_server("openai") as srv:
        yield srv


def _spec(server, **options: str) -> str:
    return f"openai-compatible:{server.base_url}#{MODELS['openai']}" + "".join(f",{k}={v}" for k, v in options.items())


def _capabilities(spec: str) -> Capabilities:
    adapter = load_adapter(spec)
    try:
        return adapter.capabilities
    finally:
        adapter.close()


def test_loglikelihoods_are_claimed_only_with_a_tokenizer(server, tiny_model: Path) -> None:
    assert _capabilities(_spec(server)) == Capabilities(loglikelihood=False, generate=True, chat=True)
    assert _capabilities(_spec(server, tokenizer=str(tiny_model))) == Capabilities(True, True, True)


def test_auto_formulation_asks_for_letters_without_a_tokenizer(server) -> None:
    record = evalboard.evaluate(_spec(server), ["arc_easy"], limit=2, output_dir=None, cache=False)
    entry = record.tasks["arc_easy"]
    assert entry.formulation == "generative" and entry.n_items == 2 and entry.failed_items == 0
    asked = [e.body for e in server.log if e.path.endswith("/completions")]
    assert len(asked) == 2 and all("echo" not in body and "A. " in body["prompt"] for body in asked)


def test_loglikelihood_formulation_is_refused_before_any_request(server) -> None:
    with pytest.raises(UserError, match=r"logprobs.*--formulation generative"):
        evalboard.evaluate(_spec(server), ["arc_easy"], limit=2, output_dir=None, cache=False,
                           formulation="loglikelihood")
    assert not [e for e in server.log if e.path.endswith("/completions")]

"""The hosted APIs' preflight request follows the run's retry policy: transient trouble at the
start (529s, 429s with Retry-After, connection resets) is waited out as it would be mid-run; a
permanent error (refused key, unknown model) ends the run at once, and transient trouble only once it
has outlasted every retry. Real clients, against
the local servers that speak each wire protocol."""

from __future__ import annotations

import pytest
from evalboard.errors import UserError
from evalboard.requests import GenerateRequest
from servers.base import Fault
from servers.fixtures import adapters_closed_after_test, generate, make_adapter, make_server  # noqa: F401

PREFLIGHT_PROMPT = "Reply with OK."  # what the adapters send first
START_FAULTS = {
    "three 529s": [Fault.http(529)] * 3,
    "three 429s with Retry-After": [Fault.http(429, retry_after="0.05")] * 3,
    "three resets": [Fault.reset(0)] * 3,
}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("faults", list(START_FAULTS), ids=list(START_FAULTS))
def test_transient_faults_at_the_start_are_retried_not_fatal(provider: str, faults: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server(provider) as server:
        server.script(PREFLIGHT_PROMPT, list(START_FAULTS[faults]))
        adapter = make_adapter(provider, server, monkeypatch, max_retries=4)
        [answer] = generate(adapter, [GenerateRequest("prompt 0")])
        assert answer.error is None and answer.text
        assert server.count(PREFLIGHT_PROMPT) == 4  # three faults, then the one that went through


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_transient_faults_past_every_retry_end_the_run_in_one_line(provider: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The API stays down through every retry the policy allows: then, and only then, the run stops."""
    with make_server(provider) as server:
        server.script(PREFLIGHT_PROMPT, [Fault.http(529)] * 10)
        adapter = make_adapter(provider, server, monkeypatch, max_retries=3)
        with pytest.raises(UserError, match="failed after 4 attempts") as error:
            generate(adapter, [GenerateRequest("prompt 0")])
        assert "\n" not in str(error.value)
        assert server.count(PREFLIGHT_PROMPT) == 4 and server.count("prompt 0") == 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_refused_key_at_the_start_still_ends_the_run_at_once(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server(provider) as server:
        server.script(PREFLIGHT_PROMPT, [Fault.http(401, message="invalid key")])
        adapter = make_adapter(provider, server, monkeypatch, max_retries=4)
        with pytest.raises(UserError) as error:
            generate(adapter, [GenerateRequest("prompt 0")])
        assert "\n" not in str(error.value)
        assert server.count(PREFLIGHT_PROMPT) == 1 and server.count("prompt 0") == 0

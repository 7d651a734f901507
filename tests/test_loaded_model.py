"""`evaluate()` takes an already loaded transformers model and tokenizer (lm-eval's
`HFLM(pretrained=model)`), and gives the numbers the same model gives when loaded from its path."""

from __future__ import annotations

from pathlib import Path

import evalboard
import pytest
from evalboard.errors import UserError


def test_a_loaded_model_scores_as_its_folder_does(tiny_model: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    loaded = evalboard.evaluate(model, "arc_easy", tokenizer=tokenizer, limit=4, output_dir=None)
    by_path = evalboard.evaluate(f"hf:{tiny_model}", "arc_easy", limit=4, output_dir=None)
    assert loaded.model.spec.startswith("hf:in-memory:") and loaded.model.label == str(tiny_model)
    assert [r.logprob for s in loaded.samples["arc_easy"] for r in s.responses] == pytest.approx(
        [r.logprob for s in by_path.samples["arc_easy"] for r in s.responses], abs=1e-5)
    assert loaded.tasks["arc_easy"].metrics == by_path.tasks["arc_easy"].metrics
    # changed weights are another model: another spec and fingerprint, so no stale cached answers
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    changed = evalboard.evaluate(model, "arc_easy", tokenizer=tokenizer, limit=4, output_dir=None, label="changed")
    assert changed.model.fingerprint != loaded.model.fingerprint and changed.model.label == "changed"
    assert changed.usage.requests_answered_now == changed.usage.unique_requests


def test_a_loaded_model_without_its_tokenizer_is_one_clear_error(tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with pytest.raises(UserError, match="needs its tokenizer"):
        evalboard.evaluate(model, "arc_easy", limit=2, output_dir=None)
    with pytest.raises(UserError, match="spec string or a loaded transformers model"):
        evalboard.evaluate(42, "arc_easy", tokenizer=object(), limit=2, output_dir=None)

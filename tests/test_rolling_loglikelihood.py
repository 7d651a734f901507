"""Rolling loglikelihood against lm-eval itself: the windows (lm_eval.utils), the totals
(HFLM.loglikelihood_rolling on the same models) and the perplexity tasks' figures (lm-eval's
aggregation functions, and its own wikitext task on the same pages).

The texts are real: help topics of the Python reference (the standard library's pydoc_data), long
enough to span many windows of a tiny model with 64 positions."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from pydoc_data.topics import topics

import evalboard
import pytest
from evalboard.models.adapters.base import load_adapter
from evalboard.models.rolling import rolling_windows
from evalboard.requests import Response, RollingLoglikelihoodRequest
from lm_eval_reference import run_lm_eval, write_wikitext
from tiny_models import build_tiny_llama

TEXTS = [topics["exceptions"], topics["assert"], topics["exceptions"][:300], "x", ""]
ABS, REL = 1e-4, 1e-6


@pytest.fixture(scope="module")
def tiny_short(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with 64 positions: the long texts span 10-18 windows."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-64"), max_positions=64)


def _ours(spec: str, texts: Sequence[str]) -> tuple[list[float], list[int]]:
    """(evalboard's totals, token counts) from the adapter the spec names."""
    adapter = load_adapter(spec)
    got: dict[int, Response] = {}
    try:
        adapter.loglikelihood_rolling([RollingLoglikelihoodRequest(t) for t in texts], got.__setitem__)
        lengths = [len(adapter.encode(t)) for t in texts]
    finally:
        adapter.close()
    assert sorted(got) == list(range(len(texts)))
    return [float(got[i].logprob) for i in range(len(texts))], lengths  # type: ignore[arg-type]


def _lm_eval(model_dir: Path, texts: Sequence[str], max_length: int | None) -> list[float]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(model_dir), dtype="float32", device="cpu", batch_size=1,
              **({"max_length": max_length} if max_length else {}))
    requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(texts)]
    return [float(x) for x in lm.loglikelihood_rolling(requests, disable_tqdm=True)]


# --------------------------------------------------------------------------- the windows


@pytest.mark.parametrize("max_length", [1, 2, 7, 64])
@pytest.mark.parametrize("length", [0, 1, 6, 7, 8, 13, 14, 15, 64, 65, 129, 300])
def test_windows_are_lm_evals(length: int, max_length: int) -> None:
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    tokens = list(range(100, 100 + length))
    expected = [make_disjoint_window(w) for w in get_rolling_token_windows(tokens, 7, max_length, 1)]
    windows = rolling_windows(tokens, 7, max_length)
    assert windows == [(list(a), list(b)) for a, b in expected]
    assert [t for _, continuation in windows for t in continuation] == tokens  # each token once


def test_the_last_short_window_sees_the_tokens_before_it() -> None:
    """150 tokens in windows of 64: the last 22 are predicted after the 43 tokens before them
    (a full model input), not after one token."""
    tokens = list(range(150))
    context, continuation = rolling_windows(tokens, -1, 64)[-1]
    assert continuation == tokens[128:] and context == tokens[85:128]


# --------------------------------------------------------------------------- totals


@pytest.mark.parametrize("max_length", [None, 40])
def test_totals_equal_lm_evals_hflm(tiny_short: Path, max_length: int | None) -> None:
    spec = f"hf:{tiny_short},dtype=float32,device=cpu" + (f",max_length={max_length}" if max_length else "")
    ours, lengths = _ours(spec, TEXTS)
    window = max_length or 64  # the model's positions, as lm-eval's default
    assert lengths[0] > 16 * window and lengths[0] % window  # many windows, a short last one
    assert ours == pytest.approx(_lm_eval(tiny_short, TEXTS, max_length), rel=REL, abs=ABS)


def test_totals_equal_lm_evals_hflm_without_bos(tiny_model_no_bos: Path) -> None:
    ours, _ = _ours(f"hf:{tiny_model_no_bos},dtype=float32,device=cpu,max_length=48", TEXTS)
    assert ours[-1] == 0.0  # no tokens, nothing predicted
    assert ours == pytest.approx(_lm_eval(tiny_model_no_bos, TEXTS, 48), rel=REL, abs=ABS)


@pytest.mark.slow
def test_smollm2_total_equals_lm_evals(smollm2_dir: Path) -> None:
    text = topics["exceptions"][:700]
    ours, lengths = _ours(f"hf:{smollm2_dir},dtype=float32,device=cpu,max_length=64", [text])
    assert 128 < lengths[0] < 192  # three windows
    assert ours == pytest.approx(_lm_eval(smollm2_dir, [text], 64), rel=REL, abs=ABS)


# --------------------------------------------------------------------------- the tasks


def _pairs(samples: list, count) -> list[tuple[float, int]]:  # type: ignore[no-untyped-def]
    return [(float(s.responses[0].logprob), count(s.requests[0].text)) for s in samples]


def test_pydoc_task_reports_lm_evals_aggregations(tiny_short: Path) -> None:
    from lm_eval.api.metrics import bits_per_byte, weighted_perplexity
    from lm_eval.api.task import Task

    record = evalboard.evaluate(f"hf:{tiny_short},device=cpu,max_length=48", ["pydoc_perplexity"], limit=4,
                                output_dir=None, cache=False)
    entry, samples = record.tasks["pydoc_perplexity"], record.samples["pydoc_perplexity"]
    names = list(topics)[:4]
    assert [s.doc_id for s in samples] == names  # the standard library's topics, in order
    assert [s.requests[0].text for s in samples] == [topics[n] for n in names]
    words, size = _pairs(samples, Task.count_words), _pairs(samples, Task.count_bytes)
    expected = {"word_perplexity": weighted_perplexity(words), "byte_perplexity": weighted_perplexity(size),
                "bits_per_byte": bits_per_byte(size)}
    for metric, value in expected.items():
        assert entry.metrics[metric].value == pytest.approx(value, rel=1e-12), metric
        assert entry.metrics[metric].stderr is None and entry.metrics[metric].n == 4
    # a ratio of sums, not a mean of per-document perplexities
    mean_of_ratios = sum(math.exp(-ll / n) for ll, n in size) / len(size)
    assert entry.metrics["byte_perplexity"].value != pytest.approx(mean_of_ratios, rel=1e-3)
    assert entry.primary_metric == "word_perplexity" and entry.higher_is_better is False
    assert entry.formulation == "loglikelihood_rolling"


def test_wikitext_task_equals_lm_evals_wikitext(tiny_short: Path, tmp_path: Path) -> None:
    """Same pages through lm-eval's own wikitext task: the detokenised page is scored, words and
    bytes are counted on the raw page."""
    pages = [topics[name] for name in ("assert", "async", "bltin-type-objects")]
    (tmp_path / "data" / "wikitext").mkdir(parents=True)
    (tmp_path / "data" / "wikitext" / "test.jsonl").write_text(
        "".join(json.dumps({"page": page}) + "\n" for page in pages), encoding="utf-8")
    record = evalboard.evaluate(f"hf:{tiny_short},device=cpu", ["wikitext"], data_dir=tmp_path / "data",
                                output_dir=None, cache=False)
    name = write_wikitext(tmp_path, pages)
    reference = run_lm_eval(tiny_short, tmp_path, [name])

    samples = record.samples["wikitext"]
    assert [s.requests[0].text for s in samples] != pages  # detokenised before scoring
    theirs = sorted(reference["samples"][name], key=lambda s: s["doc_id"])
    for mine, their in zip(samples, theirs):
        assert mine.scores["byte_perplexity"][1] == their["byte_perplexity"][1]  # raw page bytes
        assert mine.scores["word_perplexity"][1] == their["word_perplexity"][1]
        assert mine.responses[0].logprob == pytest.approx(their["resps"][0][0], rel=REL, abs=ABS)
    for metric in ("word_perplexity", "byte_perplexity", "bits_per_byte"):
        assert record.tasks["wikitext"].metrics[metric].value == pytest.approx(
            reference["results"][name][f"{metric},none"], rel=1e-6), metric


def test_chance_baseline_answers_rolling_requests() -> None:
    record = evalboard.evaluate("chance:3", ["pydoc_perplexity"], limit=3, output_dir=None, cache=False)
    metrics = record.tasks["pydoc_perplexity"].metrics
    assert all(math.isfinite(metrics[m].value) and metrics[m].value > 0 for m in metrics)
    assert all((s.responses[0].logprob or 0) < 0 for s in record.samples["pydoc_perplexity"])

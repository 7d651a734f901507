"""Helpers for tests/test_vllm.py: the vLLM venv (installed on demand, never skipped), ground-truth
loglikelihoods from a direct transformers forward, and a process check."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON = REPO_ROOT / ".venv-vllm" / "bin" / "python"


def ensure_vllm_installed() -> Path:
    """The vLLM venv's python; runs scripts/install_vllm.sh first when it is missing."""
    if not VLLM_PYTHON.exists():
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install_vllm.sh")], check=True)
    return VLLM_PYTHON


def reference_loglikelihoods(
    model_dir: Path, pairs: Sequence[tuple[object, str]], adapter: Path | None = None
) -> list[tuple[float, bool]]:
    """(sum of log-softmax of the continuation tokens given the context, all of them argmax) by a
    plain transformers forward, with lm-eval's token boundary written out independently:
    trailing context spaces move to the continuation, continuation tokens are what follows the
    context's tokens in the whole string's encoding, an empty context is BOS. Chat contexts
    (tuples of (role, content)) go through the tokenizer's chat template first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    results = []
    for context, continuation in pairs:
        if not isinstance(context, str):
            messages = [{"role": r, "content": c} for r, c in context]  # type: ignore[union-attr]
            context = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if context == "":
            context_ids = [tokenizer.bos_token_id]
            continuation_ids = tokenizer(continuation, add_special_tokens=False).input_ids
        else:
            spaces = len(context) - len(context.rstrip())
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            context_ids = tokenizer(context).input_ids
            continuation_ids = tokenizer(context + continuation).input_ids[len(context_ids) :]
        ids = torch.tensor([context_ids + continuation_ids])
        with torch.no_grad():
            logprobs = model(ids).logits[0].float().log_softmax(-1)
        rows = logprobs[len(context_ids) - 1 : -1]
        target = torch.tensor(continuation_ids)
        picked = rows.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        results.append((float(picked.sum()), bool((rows.argmax(-1) == target).all())))
    return results


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (e.g. a test's unique model path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found

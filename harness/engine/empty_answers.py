"""A warning when every generation of a task came back empty: the usual cause is an instruct
model asked without its chat template (it answers the raw prompt with an end-of-turn token at
once), and a column of zeros would otherwise look like a real score."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from evalboard.records.run_record import SampleLine

logger = logging.getLogger(__name__)


def all_generations_empty(samples: Sequence[SampleLine]) -> bool:
    """True when the task generated text and every answered generation is empty (or blank)."""
    texts = [r.text for s in samples for r in s.responses if r.text is not None and r.error is None]
    return bool(texts) and not any(t.strip() for t in texts)


def warn_if_all_empty(task: str, samples: Sequence[SampleLine], chat_template_applied: bool) -> bool:
    if not all_generations_empty(samples):
        return False
    advice = ("if it is an instruct/chat model, add --apply-chat-template (apply_chat_template=True)"
              if not chat_template_applied else
              "check the model's stop sequences and --max-new-tokens")
    logger.warning("warning: every generation of task %s came back empty (%d items), so it scores 0; %s",
                   task, len(samples), advice)
    return True

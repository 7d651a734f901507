"""MATH answers as lm-eval 0.4.13 reads and compares them (its `minerva_math` and frozen
`leaderboard_math_hard` utilities), written here so that scoring never imports lm-eval's task
registry; the test suite runs both on the same responses.

- `last_boxed` / `unbox`: the last `\\boxed{...}` (or `\\fbox`) of a text and its inside.
- `final_answer_line`: what follows "Final Answer: The final answer is" (the Minerva prompt's
  closing sentence), or `INVALID_ANSWER`.
- `normalise_answer`: Minerva's normalisation (Lewkowycz et al. 2022, appendix D), in lm-eval's two
  versions: `revised=True` (`minerva_math`, which keeps `\\left` intact and commas in tuples) and
  `revised=False` (the leaderboard's frozen copy).
- `sympy_equivalent`: both sides parsed as LaTeX by sympy and their difference simplified, with a
  time limit per comparison (`within_time_limit`).
- `math_verify_match`: Hugging Face's `math-verify` (parse gold and response, then verify), the
  maintained checker lm-eval reports as `math_verify` (and as the leaderboard's `exact_match`).
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

INVALID_ANSWER = "[invalidanswer]"
T = TypeVar("T")


class _TimedOut(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _TimedOut


def _in_child(connection: Any, function: Callable[..., Any], arguments: tuple[Any, ...], seconds: float,
              default: Any) -> None:
    connection.send(within_time_limit(seconds, default, function, *arguments))


def within_time_limit(seconds: float, default: T, function: Callable[..., T], *arguments: Any) -> T:
    """`function(*arguments)`, or `default` when it runs past `seconds` (sympy's simplify can run
    for minutes on an adversarial answer). In the main thread a SIGALRM timer interrupts it; signals
    reach only the main thread, so elsewhere the call runs in a forked child that is killed at the
    limit. The comparison's exceptions are the caller's to handle (in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        receive, send = multiprocessing.Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(
            target=_in_child, args=(send, function, arguments, seconds, default), daemon=True)
        child.start()
        ready = receive.poll(seconds + 1.0)
        result = receive.recv() if ready else default
        child.kill()
        child.join()
        return result
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return function(*arguments)
    except _TimedOut:
        logger.debug("comparison timed out after %ss", seconds)
        return default
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def last_boxed(text: str) -> str | None:
    """The last `\\boxed{...}` of `text` with its braces balanced, `\\boxed X` up to the next `$`
    when the text uses the brace-less form anywhere, else the last `\\fbox{...}`; None if none."""
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for position in range(start, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return text[start:position + 1]
    return None


def unbox(boxed: str | None) -> str | None:
    """The inside of `\\boxed{X}` or `\\boxed X`; None for anything else (an `\\fbox`, a missing box)."""
    if boxed is None:
        return None
    if "\\boxed " in boxed:
        return boxed[len("\\boxed "):] if boxed.startswith("\\boxed ") else None
    if boxed.startswith("\\boxed{") and boxed.endswith("}"):
        return boxed[len("\\boxed{"):-1]
    return None


_FINAL_ANSWER = re.compile(r"Final Answer: The final answer is(.*?). I hope it is correct.")


def final_answer_line(text: str) -> str:
    """The answer the Minerva prompt's closing sentence states (a response cut off before "I hope
    it is correct." still counts: the sentence's end is appended before searching)."""
    found = _FINAL_ANSWER.search(text + "I hope it is correct.")
    return found.group(1).strip() if found else INVALID_ANSWER


# Appendix D of the Minerva paper: literal replacements, then expressions (units, words) removed.
_REPLACEMENTS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), (r"\ ", ""), (" ", ""), ("mbox", "text"),
    (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)
_REMOVED = (
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units", "\\ldots",
    "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters",
    "meals", "edges", "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}",
    "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}", r"\mathrm{th}", r"^\circ", r"^{\circ}", r"\;",
    r",\!", "{,}", '"', "\\dots",
)
_LATEX_COMMAND = re.compile(r"(\\[a-zA-Z]+)")


def _remove_word_outside_commands(text: str, word: str) -> str:
    pieces = _LATEX_COMMAND.split(text)  # odd positions are command names, left alone
    return "".join(piece if index % 2 else piece.replace(word, "") for index, piece in enumerate(pieces))


def normalise_answer(answer: str, revised: bool = True) -> str:
    """Minerva's normalisation of a final answer. `revised` is lm-eval's `minerva_math` version
    (unit words removed only as whole words or outside LaTeX command names, indexed roots kept,
    commas removed only as thousands separators); without it, the leaderboard's frozen version."""
    answer = answer.split("=")[-1]
    if revised:
        for word in _REMOVED:
            if word.isalpha():
                answer = re.sub(rf"(?<!\\)\b{word}\b", "", answer)
    for before, after in _REPLACEMENTS:
        answer = answer.replace(before, after)
    for word in _REMOVED:
        answer = _remove_word_outside_commands(answer, word) if revised and word.isalpha() else answer.replace(word, "")
    answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", answer)
    for command in ("text", "textbf", "overline"):
        answer = re.sub(rf"(\\{command}\{{)(.*?)(\}})", "\\2", answer)
    answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", answer)
    if revised:
        answer = re.sub(r"(sqrt)(\[[^\]]*\])(\w)", "\\1\\2{\\3}", answer)
        answer = re.sub(r"(sqrt)(?!\[)([^{])", "sqrt{\\2}", answer)
    else:
        answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", answer)
    answer = answer.replace("$", "")
    if revised:
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+", answer):
            answer = answer.replace(",", "")
    elif answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer


def _sympy_difference_is_zero(first: str, second: str) -> bool:
    import sympy
    from sympy.parsing.latex import parse_latex
    from sympy.parsing.latex.errors import LaTeXParsingError

    try:
        difference = parse_latex(first) - parse_latex(second)
    except (LaTeXParsingError, sympy.SympifyError, TypeError):
        return False
    try:
        return bool(sympy.simplify(difference) == 0)
    except ValueError:
        return False


def _guarded(first: str, second: str) -> bool:
    try:
        return _sympy_difference_is_zero(first, second)
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 - lm-eval counts any failure of the comparison as "not equal"
        return False


def sympy_equivalent(first: str, second: str, seconds: float, identical_is_equal: bool = True) -> bool:
    """lm-eval's `is_equiv` on two normalised answers: equal when sympy simplifies the difference
    of their LaTeX parses to 0 within `seconds`; a parse failure, any other error or the time limit
    is "not equal". `identical_is_equal` is `minerva_math`'s shortcut for identical non-empty strings
    (tuples and intervals, which sympy cannot parse); the leaderboard's frozen copy lacks it."""
    if identical_is_equal and first and first == second:
        return True
    try:
        return within_time_limit(seconds, False, _guarded, first, second)
    except ImportError as exc:
        raise RuntimeError(f"MATH's sympy comparison needs `antlr4-python3-runtime==4.11` ({exc})") from exc


def math_verify_match(gold_text: str, response: str, gold_latex_only: bool = False) -> bool:
    """`math-verify` on the gold solution and the response (its parse's and verify's own time
    limits apply in the main thread; elsewhere the whole check gets one)."""
    if threading.current_thread() is not threading.main_thread():
        return within_time_limit(10.0, False, _math_verify, gold_text, response, gold_latex_only, False)
    return _math_verify(gold_text, response, gold_latex_only, True)


def _math_verify(gold_text: str, response: str, gold_latex_only: bool, own_timeouts: bool) -> bool:
    from math_verify import LatexExtractionConfig, parse, verify

    limits: dict[str, Any] = {} if own_timeouts else {"parsing_timeout": None}
    gold = parse(gold_text, extraction_config=[LatexExtractionConfig()], **limits) if gold_latex_only \
        else parse(gold_text, **limits)
    return bool(verify(gold, parse(response, **limits), **({} if own_timeouts else {"timeout_seconds": None})))

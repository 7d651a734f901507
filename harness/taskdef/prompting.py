"""Turning a document (and its few-shot examples) into a prompt: plain text the way lm-eval
builds it, or a multi-turn chat when a chat template is applied."""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
from evalboard.errors import UserError
from evalboard.requests import Message, Prompt

LETTERS = string.ascii_uppercase

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


@cache
def _template(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


@cache
def _expression(source: str) -> Any:
    return _ENV.compile_expression(source, undefined_to_none=False)


def template_context(doc: dict[str, Any]) -> dict[str, Any]:
    context = dict(doc)
    choices = doc.get("choices")
    if isinstance(choices, list):
        context["lettered_choices"] = "".join(
            f"{LETTERS[i]}. {choice}\n" for i, choice in enumerate(choices)
        )
    return context


def _fields_hint(doc: dict[str, Any]) -> str:
    names = ", ".join(str(name) for name in doc)
    return f"the item's fields are: {names[:200]}"


def render(source: str, doc: dict[str, Any], task_name: str) -> str:
    try:
        return _template(source).render(template_context(doc))
    except jinja2.TemplateError as exc:
        raise UserError(f"task {task_name}: prompt template failed on doc {doc.get('id')}: {exc}; "
                        f"{_fields_hint(doc)}") from None


def check_syntax(source: str, *, expression: bool) -> str | None:
    """Why a template (or an expression) does not compile; None when it does."""
    try:
        _expression(source) if expression else _template(source)
    except jinja2.TemplateSyntaxError as exc:
        return str(exc.message or exc)
    return None


def evaluate_expression(source: str, doc: dict[str, Any], task_name: str, field: str = "") -> Any:
    """An expression over the document (`field`: the task-file key it came from, for the message)."""
    where = f"`{field}: {source}`" if field else f"expression {source!r}"
    try:
        value = _expression(source)(**template_context(doc))
    except jinja2.TemplateError as exc:
        raise UserError(f"task {task_name}: {where} failed on doc {doc.get('id')}: {exc}; "
                        f"{_fields_hint(doc)}") from None
    except Exception as exc:  # noqa: BLE001 - an expression is user code: any failure is a bad expression
        raise UserError(f"task {task_name}: {where} failed on doc {doc.get('id')} "
                        f"({type(exc).__name__}: {exc}); {_fields_hint(doc)}") from None
    if isinstance(value, jinja2.Undefined):
        key = f"`{field}:` " if field else ""
        raise UserError(f"task {task_name}: {where} names nothing doc {doc.get('id')} has; "
                        f"{_fields_hint(doc)}: add the field to every item or set {key}to the one holding it")
    return value


@dataclass(frozen=True)
class PromptStyle:
    """How prompts are assembled for this run (not per task)."""

    apply_chat_template: bool = False
    system_prompt: str | None = None


@dataclass(frozen=True)
class Turn:
    """One question and (for few-shot examples) its answer."""

    question: str
    answer: str | None = None


def assemble(
    description: str,
    shots: Sequence[Turn],
    final_question: str,
    style: PromptStyle,
    target_delimiter: str,
    fewshot_delimiter: str,
) -> Prompt:
    """The prompt for one document. Plain text: description, then each example's question +
    delimiter + answer separated by the few-shot delimiter, then the question (lm-eval's layout).
    Chat: examples become user/assistant turns; the description opens the first user turn."""
    if not style.apply_chat_template:
        prefix = f"{style.system_prompt}{fewshot_delimiter}" if style.system_prompt else ""
        examples = "".join(
            f"{shot.question}{target_delimiter}{shot.answer}{fewshot_delimiter}" for shot in shots
        )
        return f"{prefix}{description}{examples}{final_question}"
    messages: list[Message] = []
    if style.system_prompt:
        messages.append(("system", style.system_prompt))
    for shot in shots:
        messages.append(("user", shot.question))
        messages.append(("assistant", str(shot.answer)))
    messages.append(("user", final_question))
    first_user = next(i for i, (role, _) in enumerate(messages) if role == "user")
    role, content = messages[first_user]
    messages[first_user] = (role, f"{description}{content}")
    return tuple(messages)

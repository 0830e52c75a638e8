"""``math_answer``'s ``math_verify`` backend: Hugging Face's Math-Verify (open-r1, TRL, verl)
parses both answers into SymPy and compares them (sets, intervals, symbols, ``2^{10}``)."""

from __future__ import annotations

import re
import threading
from typing import Any

from rlcore.sdk import ConfigError

INSTALL = "pip install 'rlcore-plugin-rewards[math_verify]' (or pip install math-verify)"
_WORD = re.compile(r"\b[A-Za-z]{2,}\b")
_LATEX_COMMAND = re.compile(r"\\(?:text|mathrm|mbox)\{[^{}]*\}|\\[A-Za-z]+")


def load() -> Any:
    """The ``math_verify`` module, or a ConfigError saying how to install it."""
    try:
        import math_verify
    except ImportError:
        raise ConfigError("math_answer's backend 'math_verify' needs the math-verify package, "
                          f"which is not installed; install it with {INSTALL}, or set "
                          "reward.args.backend=builtin") from None
    return math_verify


def is_expression(text: str) -> bool:
    """Whether ``text`` is an answer alone (``\\frac{1}{2}``, ``x^2``), not prose around one."""
    return not _WORD.search(_LATEX_COMMAND.sub("", text))


def parse_answer(text: str, answer: str | None, value: str | None) -> list[Any]:
    """Math-Verify's parse of what ``text`` commits to, the first that parses of: ``answer``
    (after ``####``, in the last ``\\boxed{}``, or the whole text) when it is an expression,
    not prose; Math-Verify's own extraction where ``text`` has ``$...$``; ``value`` (the
    number or fraction the builtin rules pick); Math-Verify's own extraction."""
    mv = load()
    timeout = 5 if threading.current_thread() is threading.main_thread() else None  # SIGALRM

    def boxed(expression: str) -> list[Any]:
        return mv.parse("\\boxed{" + expression + "}", parsing_timeout=timeout)

    for attempt in (
        lambda: boxed(answer) if answer and is_expression(answer) else [],
        lambda: mv.parse(text, parsing_timeout=timeout) if "$" in text else [],
        lambda: boxed(value) if value else [],
        lambda: mv.parse(text, parsing_timeout=timeout),
    ):
        if found := attempt():
            return found
    return []


def equal(gold: list[Any], got: list[Any]) -> bool:
    """Whether Math-Verify finds the two parsed answers equal (False when either is empty)."""
    if not gold or not got:
        return False
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    return bool(load().verify(gold, got, timeout_seconds=timeout))

"""Tool calls as models write them, parsed into OpenAI-format calls.

Formats (``env.tool_format``):

- ``hermes`` (Hermes, Qwen 2.5/3): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
  one block per call;
- ``llama3_json`` (Llama 3.1/3.2): the message is a JSON object ``{"name": ...,
  "parameters": {...}}`` (optionally after ``<|python_tag|>``), several joined by ``;``;
- ``auto``: hermes when the text has ``<tool_call>``, else llama3_json when it is a JSON call.

A malformed call is never an exception: it comes back as an error message, which the episode
turns into an error observation and the ``env/tool_errors`` metric.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("auto", "hermes", "llama3_json")
HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
PYTHON_TAG = "<|python_tag|>"
_HERMES_BLOCK = re.compile(re.escape(HERMES_OPEN) + r"(.*?)(" + re.escape(HERMES_CLOSE) + r"|$)",
                           re.DOTALL)


@dataclass
class ParsedTurn:
    """An assistant turn's text split into ``content`` (the text outside calls), the well-formed
    ``calls`` (OpenAI format, ``arguments`` a dict) and one message per malformed call."""

    content: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def message(self, text: str) -> dict[str, Any]:
        """The assistant message an environment's ``step`` receives (``text`` as written)."""
        out: dict[str, Any] = {"role": "assistant", "content": text}
        if self.calls:
            out["tool_calls"] = self.calls
        if self.errors:
            out["tool_call_errors"] = self.errors
        return out


def parse_tool_calls(text: str, fmt: str = "auto", turn: int = 0) -> ParsedTurn:
    """The tool calls in ``text`` written in ``fmt``; ``turn`` numbers their ids."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown tool-call format {fmt!r}; use one of {FORMATS}")
    if fmt == "hermes" or (fmt == "auto" and (HERMES_OPEN in text or HERMES_CLOSE in text)):
        return _hermes(text, turn)
    if fmt == "llama3_json" or (fmt == "auto" and _looks_like_json_call(text)):
        return _llama3_json(text, turn)
    return ParsedTurn(text.strip())


def _hermes(text: str, turn: int) -> ParsedTurn:
    parsed = ParsedTurn(_HERMES_BLOCK.sub("", text).strip())
    for i, match in enumerate(_HERMES_BLOCK.finditer(text)):
        if not match.group(2):
            parsed.errors.append(f"{HERMES_OPEN} is not closed by {HERMES_CLOSE}")
            continue
        _add_call(parsed, match.group(1).strip(), f"call_{turn}_{i}")
    if HERMES_CLOSE in parsed.content:
        parsed.errors.append(f"{HERMES_CLOSE} without {HERMES_OPEN}")
    return parsed


def _llama3_json(text: str, turn: int) -> ParsedTurn:
    body = text.strip().removeprefix(PYTHON_TAG).strip()
    parsed = ParsedTurn("")
    if not body:
        return ParsedTurn(text.strip())
    try:  # one object, or several joined by ';'
        objects = [json.loads(body)]
    except json.JSONDecodeError:
        objects = [part.strip() for part in body.split(";") if part.strip()]
    for i, obj in enumerate(objects):
        _add_call(parsed, obj, f"call_{turn}_{i}")
    return parsed


def _looks_like_json_call(text: str) -> bool:
    body = text.strip().removeprefix(PYTHON_TAG).strip()
    return body.startswith("{") and '"name"' in body


def _add_call(parsed: ParsedTurn, raw: Any, call_id: str) -> None:
    """Append the call ``raw`` (JSON text or a decoded object) or the reason it is malformed."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as err:
            parsed.errors.append(f"the tool call is not valid JSON ({err.msg} at character "
                                 f"{err.pos}): {_clip(raw)}")
            return
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        parsed.errors.append(f'a tool call needs {{"name": ..., "arguments": {{...}}}}; got '
                             f"{_clip(json.dumps(raw))}")
        return
    args = raw.get("arguments", raw.get("parameters", {}))
    if isinstance(args, str):  # some models write the arguments as a JSON string
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            pass
    if not isinstance(args, dict):
        parsed.errors.append(f"the arguments of tool call {raw['name']!r} must be a JSON object; "
                             f"got {_clip(json.dumps(args))}")
        return
    parsed.calls.append({"id": call_id, "type": "function",
                         "function": {"name": raw["name"], "arguments": args}})


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def render_call(name: str, arguments: dict[str, Any], fmt: str = "hermes") -> str:
    """A call as a model in ``fmt`` writes it (demonstrations use this)."""
    body = json.dumps({"name": name, "arguments" if fmt == "hermes" else "parameters": arguments},
                      separators=(",", ":"))
    return f"{HERMES_OPEN}{body}{HERMES_CLOSE}" if fmt in ("hermes", "auto") else body

"""Tool calls as models write them: Hermes/Qwen blocks, Llama 3.1 JSON, and malformed calls
that come back as error messages, never exceptions."""

from __future__ import annotations

import pytest

from rlcore.agents.tool_calls import parse_tool_calls, render_call


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def functions(parsed):
    return [c["function"] for c in parsed.calls]


def test_hermes_blocks_with_text_around():
    text = ('Let me add. <tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
            '<tool_call>{"name": "neg", "arguments": "{\\"x\\": 3}"}</tool_call>')
    parsed = parse_tool_calls(text, "hermes", turn=2)
    assert functions(parsed) == [call("add", a=1, b=2), call("neg", x=3)]
    assert [c["id"] for c in parsed.calls] == ["call_2_0", "call_2_1"]
    assert parsed.content == "Let me add." and not parsed.errors


def test_llama3_json_calls():
    one = parse_tool_calls('{"name": "add", "parameters": {"a": 1}}', "llama3_json")
    two = parse_tool_calls('<|python_tag|>{"name": "f", "parameters": {}}; '
                           '{"name": "g", "parameters": {"y": "z"}}')
    assert functions(one) == [call("add", a=1)]
    assert functions(two) == [call("f"), call("g", y="z")]


@pytest.mark.parametrize("text, error", [
    ('<tool_call>{"name": "add", "arguments": {"a": 1,}}</tool_call>', "not valid JSON"),
    ('<tool_call>{"name": "add"', "not closed"),
    ('<tool_call>["add"]</tool_call>', 'needs {"name"'),
    ('<tool_call>{"name": "add", "arguments": [1]}</tool_call>', "must be a JSON object"),
    ('done</tool_call>', "without <tool_call>"),
])
def test_malformed_calls_are_errors_not_exceptions(text, error):
    parsed = parse_tool_calls(text)
    assert not parsed.calls and error in parsed.errors[0]
    assert parsed.message(text)["tool_call_errors"] == parsed.errors


def test_plain_answers_have_no_calls():
    parsed = parse_tool_calls("The answer is 42.")
    assert parsed.message("The answer is 42.") == {"role": "assistant",
                                                   "content": "The answer is 42."}


@pytest.mark.parametrize("fmt", ["hermes", "llama3_json"])
def test_rendered_calls_parse_back(fmt):
    parsed = parse_tool_calls(render_call("add", {"a": 1}, fmt), fmt)
    assert functions(parsed) == [call("add", a=1)]


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown tool-call format"):
        parse_tool_calls("x", "xml")

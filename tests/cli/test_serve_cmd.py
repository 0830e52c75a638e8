"""``rlcore serve``: the OpenAI-compatible endpoint, token in / token out, on a tiny model that
has learned the calculator's demonstrations (so it writes tool calls), served by the CLI in a
subprocess."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request

import pytest
import torch

from rlcore.agents.episodes import observation_ids, prompt_ids
from rlcore.agents.tool_calls import parse_tool_calls
from rlcore.data.tokenizer import load_tokenizer
from rlcore.models.hf_io import load_pretrained
from rlcore.testing.chat_models import save_chat_model, served
from rlcore_plugin_algorithms.calculator import Calculator

TOOLS = Calculator.tools


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    env = Calculator()
    chats = [env.demonstration(row) for row in Calculator.tasks("train", 64, 0)]
    return save_chat_model(tmp_path_factory.mktemp("served") / "calc", chats)


@pytest.fixture(scope="module")
def url(model_dir):
    """``rlcore serve MODEL --port 0`` in a subprocess; its base URL."""
    with served(model_dir, "--max-tokens", "96") as base:
        yield base


def post(url, body, path="/v1/chat/completions"):
    """(status, decoded JSON body) of a POST with ``body`` (bytes are sent as they are)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url, path="/v1/models"):
    try:
        with urllib.request.urlopen(url + path, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def replayed_logprobs(model, prompt, tokens):
    """log p(token | everything before it) under ``model`` (temperature 1)."""
    ids = torch.tensor(prompt + tokens)
    with torch.no_grad():
        logits = model(ids, torch.tensor([0, len(ids)]))
    logp = torch.log_softmax(logits.float(), -1)[len(prompt) - 1 : -1]
    return logp.gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1)


def test_a_tool_call_round_trip_is_token_in_token_out(url, model_dir):
    """OpenAI's shape; decoding token_ids gives the message; the served log-probs are the
    model's; the second call's prompt is the first's prompt + completion + the tool message."""
    tok = load_tokenizer(model_dir)
    model, _ = load_pretrained(model_dir)
    messages = [{"role": "user", "content": "347*8="}]
    status, out = post(url, {"model": "any", "messages": messages, "tools": TOOLS,
                             "temperature": 0, "logprobs": True})
    assert status == 200, out
    assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
    assert out["model"] == "calc" and isinstance(out["created"], int)
    (choice,) = out["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "tool_calls"
    assert choice["weight_version"] == 0
    message, tokens = choice["message"], choice["token_ids"]
    (call,) = message["tool_calls"]
    assert message["role"] == "assistant" and message["content"] is None
    assert call["type"] == "function" and call["function"]["name"] == "calculator"
    args = json.loads(call["function"]["arguments"])
    assert set(args) == {"expression"}  # the tiny model copies the numbers only roughly
    assert out["prompt_token_ids"] == prompt_ids(tok, messages, TOOLS)
    assert tokens[-1] == tok.eos_token_id and out["retokenized"] is False
    text = tok.decode(tokens, skip_special_tokens=True)
    assert parse_tool_calls(text).calls[0]["function"]["arguments"] == args
    assert "".join(t["token"] for t in choice["logprobs"]["content"]) == tok.decode(tokens)
    assert [t["logprob"] for t in choice["logprobs"]["content"]] == choice["token_logprobs"]
    assert out["usage"] == {"prompt_tokens": len(out["prompt_token_ids"]),
                            "completion_tokens": len(tokens),
                            "total_tokens": len(out["prompt_token_ids"]) + len(tokens)}
    drift = (replayed_logprobs(model, out["prompt_token_ids"], tokens)
             - torch.tensor(choice["token_logprobs"])).abs().max()
    assert drift <= 1e-4

    tool = {"role": "tool", "tool_call_id": call["id"], "name": "calculator", "content": "2776"}
    resent = {**message, "tool_calls": [{**call, "function": {  # a client re-serialised them
        "name": "calculator", "arguments": json.dumps(args, separators=(",", ":"))}}]}
    status, second = post(url, {"messages": [*messages, resent, tool], "tools": TOOLS,
                                "temperature": 0})
    assert status == 200, second
    first = out["prompt_token_ids"] + tokens
    assert second["prompt_token_ids"][: len(first)] == first and second["retokenized"] is False
    assert second["prompt_token_ids"][len(first):] == observation_ids(tok, [tool], [tok.eos_token_id])
    assert second["choices"][0]["logprobs"] is None  # OpenAI's form only when asked for


def test_an_assistant_turn_the_server_did_not_sample_is_encoded_and_flagged(url, model_dir):
    tok = load_tokenizer(model_dir)
    messages = [{"role": "user", "content": "12*3="},
                {"role": "assistant", "content": "36"}, {"role": "user", "content": "5*5="}]
    status, out = post(url, {"messages": messages, "max_tokens": 4, "seed": 1})
    assert status == 200, out
    assert out["retokenized"] is True
    want = (prompt_ids(tok, messages[:1], None) + tok("36", add_special_tokens=False)["input_ids"]
            + [tok.eos_token_id] + observation_ids(tok, messages[2:], [tok.eos_token_id]))
    assert out["prompt_token_ids"] == want
    assert out["choices"][0]["finish_reason"] == "length" and len(out["choices"][0]["token_ids"]) == 4


def test_a_turn_cut_at_max_tokens_is_closed_by_the_next_prompt(url, model_dir):
    """Its sampled tokens stay; the end-of-turn token it never wrote comes after them."""
    tok = load_tokenizer(model_dir)
    messages = [{"role": "user", "content": "604*3="}]
    _, cut = post(url, {"messages": messages, "tools": TOOLS, "max_tokens": 5, "seed": 3})
    choice = cut["choices"][0]
    assert choice["finish_reason"] == "length" and tok.eos_token_id not in choice["token_ids"]
    more = {"role": "user", "content": "go on"}
    _, out = post(url, {"messages": [*messages, choice["message"], more], "tools": TOOLS,
                        "max_tokens": 2})
    assert out["retokenized"] is False
    assert out["prompt_token_ids"] == (cut["prompt_token_ids"] + choice["token_ids"]
                                       + [tok.eos_token_id]
                                       + observation_ids(tok, [more], [tok.eos_token_id]))


@pytest.mark.parametrize("body, status, says", [
    (b"{not json", 400, "not valid JSON"),
    ([1, 2], 400, "JSON object"),
    ({"model": "x"}, 400, "messages must be a non-empty list"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "role 'robot' is not one of"),
    ({"messages": [{"role": "user", "content": 3}]}, 400, "messages[0].content must be a string"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "one choice per request"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": ["\n"]}, 400, "stop sequences"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, 400, "streaming"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 9}, 400, "temperature=9"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "x"}, 400, "max_tokens must"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"x": 1}]}, 400, "tools must"),
    ({"messages": [{"role": "user", "content": "9" * 300}]}, 400, "this model takes at most 256"),
])
def test_bad_requests_get_a_400_that_names_the_problem_and_the_server_keeps_serving(
        url, body, status, says):
    code, out = post(url, body)
    assert code == status and says in out["error"]["message"], out
    assert out["error"]["type"] == "invalid_request_error"
    assert get(url)[0] == 200
    code, out = post(url, {"messages": [{"role": "user", "content": "1*2="}], "max_tokens": 2})
    assert code == 200 and len(out["choices"][0]["token_ids"]) <= 2


def test_unknown_routes_are_404s_and_models_lists_the_model(url):
    assert get(url, "/v2/nothing")[0] == 404
    assert post(url, {"messages": []}, "/v1/completions")[0] == 404
    status, out = get(url)
    assert status == 200 and [m["id"] for m in out["data"]] == ["calc"]


def test_concurrent_requests_are_served_one_generation_at_a_time(url):
    """Each of several clients at once gets its own complete answer (seeded: the same one)."""
    body = {"messages": [{"role": "user", "content": "123*4="}], "tools": TOOLS, "seed": 7}
    results = []
    threads = [threading.Thread(target=lambda: results.append(post(url, body))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [200] * 4
    assert len({json.dumps(out["choices"][0]["token_ids"]) for _, out in results}) == 1


def test_a_model_without_a_chat_template_is_refused(model_dir, tmp_path):
    from typer.testing import CliRunner

    from rlcore.cli.app import app

    plain = tmp_path / "plain"
    shutil.copytree(model_dir, plain)
    (plain / "chat_template.jinja").unlink()
    result = CliRunner().invoke(app, ["serve", str(plain), "--port", "0"])
    assert result.exit_code != 0 and "has no chat template" in str(result.exception)
    result = CliRunner().invoke(app, ["serve", str(model_dir), "--tool-format", "xml"])
    assert result.exit_code != 0 and "unknown tool-call format 'xml'" in str(result.exception)


def test_the_end_of_turn_is_the_stop_token_the_template_writes(model_dir):
    """With several eos ids (Llama 3: end_of_text, eom, eot), the one that closes a turn."""
    from rlcore.agents.openai_server import ChatServer
    from rlcore.errors import ConfigError

    tok = load_tokenizer(model_dir)
    chat = ChatServer(None, tok, name="x", eos_ids=[tok.unk_token_id, tok.eos_token_id],
                      max_positions=64)
    assert chat.end_of_turn == tok.eos_token_id
    with pytest.raises(ConfigError, match="no end-of-sequence token"):
        ChatServer(None, tok, name="x", eos_ids=[], max_positions=64)

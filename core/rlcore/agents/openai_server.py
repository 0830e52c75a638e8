"""An OpenAI-compatible chat endpoint over a rollout engine (``rlcore serve``), so that an agent
written against the OpenAI API collects trajectories rlcore trains on, token in / token out.

``POST /v1/chat/completions`` answers in OpenAI's shape plus ``prompt_token_ids`` and, per
choice, ``token_ids``, ``token_logprobs`` and ``weight_version``. The prompt is built as the
episode loop builds it (:mod:`rlcore.agents.episodes`): the messages before the first
assistant message through the chat template, then each assistant message as the exact tokens
this server sampled for it (a bounded cache; ``retokenized: true`` when one had to be encoded
from its text) and the tool or user messages after it as :func:`observation_ids`. So call k+1's
``prompt_token_ids`` start with call k's ``prompt_token_ids + token_ids``. Standard library only.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import uuid
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rlcore.agents.episodes import observation_ids, prompt_ids
from rlcore.agents.tool_calls import FORMATS, parse_tool_calls, render_call
from rlcore.data.tokenizer import encode
from rlcore.errors import ConfigError

ROLES = ("system", "user", "assistant", "tool")
MAX_BODY = 16 * 2**20  # bytes


class BadRequest(Exception):
    """A request the server refuses (HTTP 400): its message says what was wrong; ``param``
    names the field."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class ChatServer:
    """Chat completions with ``engine`` (a rollout engine) and ``tokenizer``; one generation at
    a time. ``max_positions`` bounds prompt + completion; ``max_tokens`` is the default budget."""

    def __init__(self, engine: Any, tokenizer: Any, *, name: str, eos_ids: list[int],
                 max_positions: int, max_tokens: int = 256, tool_format: str = "auto",
                 cache_size: int = 4096):
        if tool_format not in FORMATS:
            raise ConfigError(f"unknown tool-call format {tool_format!r}; use one of {FORMATS}")
        if not eos_ids:
            raise ConfigError(f"{name} has no end-of-sequence token, so an answer could not end; "
                              "set eos_token_id in its generation_config.json or tokenizer")
        self.engine, self.tokenizer, self.name = engine, tokenizer, name
        self.eos_ids, self.max_positions = list(eos_ids), int(max_positions)
        self.max_tokens, self.tool_format, self.cache_size = max_tokens, tool_format, cache_size
        self.cache: OrderedDict[str, list[int]] = OrderedDict()  # assistant turn -> sampled ids
        self.lock, self.cache_lock = threading.Lock(), threading.Lock()  # generation, cache
        self.created = int(time.time())
        self.end_of_turn = _end_of_turn(tokenizer, self.eos_ids)

    def models(self) -> dict[str, Any]:
        """``GET /v1/models``."""
        return {"object": "list", "data": [{"id": self.name, "object": "model",
                                            "created": self.created, "owned_by": "rlcore"}]}

    def complete(self, request: Any) -> dict[str, Any]:
        """``POST /v1/chat/completions``: the response to ``request`` (a decoded JSON body)."""
        from rlcore.models.generation import GenerationConfig

        if not isinstance(request, dict):
            raise BadRequest("the body must be a JSON object with a messages list")
        _refuse_unsupported(request)
        messages = _messages(request.get("messages"))
        tools = _tools(request.get("tools"))
        prompt, retokenized = self.prompt_ids(messages, tools)
        room = self.max_positions - len(prompt)
        if room < 1:
            raise BadRequest(f"the prompt is {len(prompt)} tokens; this model takes at most "
                             f"{self.max_positions} tokens, prompt and completion together; "
                             "send fewer or shorter messages", "messages")
        budget = _number(request, ("max_completion_tokens", "max_tokens"), int, self.max_tokens, 1)
        temperature = _number(request, ("temperature",), float, 1.0, 0.0, 2.0)
        top_p = _number(request, ("top_p",), float, 1.0, 0.0, 1.0)
        if top_p == 0:
            raise BadRequest("top_p must be in (0, 1]", "top_p")
        seed = _number(request, ("seed",), int, None)
        config = GenerationConfig(max_new_tokens=min(budget, room), greedy=temperature == 0,
                                  temperature=temperature or 1.0, top_p=top_p,
                                  eos_token_ids=self.eos_ids)
        with self.lock:
            version = int(self.engine.version)
            out = self.engine.generate([prompt], config,
                                       secrets.randbits(31) if seed is None else seed)
        tokens = out.tokens[0].tolist()
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        parsed = parse_tool_calls(text, self.tool_format)
        calls = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                  "function": {"name": c["function"]["name"],
                               "arguments": json.dumps(c["function"]["arguments"])}}
                 for c in parsed.calls]
        message: dict[str, Any] = {"role": "assistant",
                                   "content": parsed.content if parsed.content or not calls else None}
        if calls:
            message["tool_calls"] = calls
        if parsed.errors:
            message["tool_call_errors"] = parsed.errors
        finish = "length" if out.finish[0] == "length" else "tool_calls" if calls else "stop"
        self._remember(_turn_key(message.get("content"), calls), tokens)
        logprobs = out.logprobs[0].tolist()
        choice = {"index": 0, "message": message, "finish_reason": finish,
                  "logprobs": {"content": self._logprob_content(tokens, logprobs)}
                  if request.get("logprobs") else None,
                  "token_ids": tokens, "token_logprobs": logprobs,
                  "weight_version": version}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": self.name, "choices": [choice],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(tokens),
                          "total_tokens": len(prompt) + len(tokens)},
                "prompt_token_ids": prompt, "retokenized": retokenized}

    def prompt_ids(self, messages: list[dict[str, Any]],
                   tools: list[dict[str, Any]] | None) -> tuple[list[int], bool]:
        """The ids the episode loop would have built for ``messages``, and whether an assistant
        message had to be encoded from its text (not sampled here, or forgotten)."""
        first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
        ids, retokenized = list(prompt_ids(self.tokenizer, messages[:first], tools)), False
        i = first
        while i < len(messages):
            turn = self._recall(_turn_key(messages[i].get("content"), messages[i].get("tool_calls")))
            if turn is None:
                turn, retokenized = self._encode_turn(messages[i]), True
            ids += turn
            if not turn or turn[-1] not in self.eos_ids:  # cut at max_tokens: close the turn
                ids.append(self.end_of_turn)
            j = i + 1
            while j < len(messages) and messages[j]["role"] != "assistant":
                j += 1
            ids += observation_ids(self.tokenizer, messages[i + 1 : j], self.eos_ids)
            i = j
        return ids, retokenized

    def _encode_turn(self, message: dict[str, Any]) -> list[int]:
        """An assistant message's tokens as the model would have written them, eos included."""
        calls = [render_call(c["function"]["name"], c["function"]["arguments"], self.tool_format)
                 for c in message.get("tool_calls") or []]
        glue = "; " if self.tool_format == "llama3_json" else ""
        text = (message.get("content") or "") + glue.join(calls)
        return [*encode(self.tokenizer, text), self.end_of_turn]

    def _recall(self, key: str) -> list[int] | None:
        with self.cache_lock:
            if key in self.cache:
                self.cache.move_to_end(key)
            return self.cache.get(key)

    def _remember(self, key: str, tokens: list[int]) -> None:
        with self.cache_lock:
            self.cache[key] = tokens
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def _logprob_content(self, tokens: list[int], logprobs: list[float]) -> list[dict[str, Any]]:
        """OpenAI's ``logprobs.content``: each token's text, log-prob and bytes."""
        pieces = [self.tokenizer.decode([t]) for t in tokens]
        return [{"token": p, "logprob": lp, "bytes": list(p.encode()), "top_logprobs": []}
                for p, lp in zip(pieces, logprobs, strict=True)]


def _end_of_turn(tokenizer: Any, eos_ids: list[int]) -> int:
    """The stop token the chat template writes after an assistant message (Llama 3's
    ``<|eot_id|>``, not its ``<|end_of_text|>``); the first eos id when it writes none."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "?"},
                                          {"role": "assistant", "content": "!"}], tokenize=False)
    after = text[text.rfind("!") + 1 :]
    names = tokenizer.convert_ids_to_tokens(list(eos_ids))
    return next((i for i, n in zip(eos_ids, names, strict=True) if n and after.startswith(n)),
                eos_ids[0])


def _turn_key(content: Any, calls: Any) -> str:
    """What identifies an assistant turn: its content and its calls' names and arguments (the
    arguments decoded, so a client's re-serialisation still matches)."""
    named = []
    for call in calls or []:
        args = call["function"]["arguments"]
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                pass
        named.append([call["function"]["name"], args])
    return json.dumps([content or "", named], sort_keys=True)


def _refuse_unsupported(request: dict[str, Any]) -> None:
    if request.get("n", 1) != 1:
        raise BadRequest(f"n={request['n']!r}: this server samples one choice per request; send "
                         "n=1 (or leave it out) and repeat the request with other seeds", "n")
    if request.get("stop") not in (None, [], ""):
        raise BadRequest("stop sequences are not supported: the model stops at its end of turn "
                         "(or max_tokens); leave stop out", "stop")
    if request.get("stream"):
        raise BadRequest("streaming is not supported; send stream=false", "stream")


def _messages(raw: Any) -> list[dict[str, Any]]:
    """The request's messages, checked: roles, text content, tool calls."""
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages must be a non-empty list of {role, content} objects",
                         "messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            role = m.get("role") if isinstance(m, dict) else None
            raise BadRequest(f"{where}: role {role!r} is not one of {', '.join(ROLES)}", where)
        content = m.get("content")
        if isinstance(content, list):  # content parts: text only
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise BadRequest(f"{where}.content: only text parts are supported", where)
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str) and not (content is None and m["role"] == "assistant"):
            raise BadRequest(f"{where}.content must be a string", where)
        message = {"role": m["role"], "content": content}
        for key in ("name", "tool_call_id"):
            if isinstance(m.get(key), str):
                message[key] = m[key]
        if m["role"] == "assistant" and m.get("tool_calls"):
            message["tool_calls"] = _calls(m["tool_calls"], where)
        out.append(message)
    return out


def _calls(raw: Any, where: str) -> list[dict[str, Any]]:
    ok = isinstance(raw, list) and all(
        isinstance(c, dict) and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str) for c in raw)
    if not ok:
        raise BadRequest(f"{where}.tool_calls must be a list of {{id, type: function, function: "
                         "{name, arguments}}} objects", where)
    calls = []
    for c in raw:
        args = c["function"].get("arguments") or {}
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                raise BadRequest(f"{where}.tool_calls: the arguments of {c['function']['name']!r} "
                                 "are not valid JSON", where) from None
        calls.append({**c, "function": {"name": c["function"]["name"], "arguments": args}})
    return calls


def _tools(raw: Any) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(
            isinstance(t, dict) and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str) for t in raw):
        raise BadRequest("tools must be a list of {type: function, function: {name, "
                         "description, parameters}} objects", "tools")
    return raw


def _number(request: dict[str, Any], keys: tuple[str, ...], kind: type, default: Any,
            low: float | None = None, high: float | None = None) -> Any:
    """Field ``keys[0]`` (or an alias after it) as ``kind`` in [low, high], else ``default``."""
    key = next((k for k in keys if request.get(k) is not None), None)
    if key is None:
        return default
    value = request[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            kind is int and not float(value).is_integer()):
        raise BadRequest(f"{key} must be {'an integer' if kind is int else 'a number'}, got "
                         f"{value!r}", key)
    if (low is not None and value < low) or (high is not None and value > high):
        raise BadRequest(f"{key}={value} is out of range [{low}, {high if high is not None else 'inf'}]", key)
    return kind(value)


class _Handler(BaseHTTPRequestHandler):
    """HTTP in and out; every failure is an OpenAI-style error body, never a dead server."""

    protocol_version = "HTTP/1.1"
    server_version = "rlcore-serve"
    server: Any

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.rstrip("/") == "/v1/models":
            return self._send(200, self.server.chat.models())
        self._error(404, f"no route GET {self.path}; use GET /v1/models or POST "
                         "/v1/chat/completions")

    def do_POST(self) -> None:  # noqa: N802
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self.close_connection = True
            return self._error(400, f"the body needs a Content-Length between 1 and {MAX_BODY} bytes")
        body = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"no route POST {self.path}; use /v1/chat/completions")
        try:
            request = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return self._error(400, f"the body is not valid JSON: {err}")
        try:
            self._send(200, self.server.chat.complete(request))
        except BadRequest as err:
            self._error(400, str(err), err.param)
        except Exception as err:  # the server keeps serving; the client learns what failed
            print(f"rlcore serve: {type(err).__name__}: {err}", file=sys.stderr)
            self._error(500, f"the server failed: {type(err).__name__}: {err}", kind="server_error")

    def _error(self, status: int, message: str, param: str | None = None,
               kind: str = "invalid_request_error") -> None:
        self._send(status, {"error": {"message": message, "type": kind, "param": param,
                                      "code": None}})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        if self.server.verbose:
            super().log_message(format, *args)


def http_server(chat: ChatServer, host: str = "127.0.0.1", port: int = 8000,
                verbose: bool = False) -> ThreadingHTTPServer:
    """A threading HTTP server for ``chat`` bound to ``host:port`` (0: a free port); call
    ``serve_forever`` on it (``server_address`` says where it listens)."""
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    server.chat, server.verbose = chat, verbose  # type: ignore[attr-defined]
    return server

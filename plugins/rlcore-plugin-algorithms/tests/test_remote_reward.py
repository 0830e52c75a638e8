"""The remote reward node against real HTTP services on 127.0.0.1: batching, retries, errors."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest
import torch

from rlcore.data.batch import PackedBatch
from rlcore.data.tokenizer import load_tokenizer
from rlcore_plugin_algorithms.remote_reward import RemoteRewardInterface
from rlcore_plugin_algorithms.rewards import RewardFunctionError

TOKENIZER = load_tokenizer(None)
HANDLE = SimpleNamespace(tokenizer=TOKENIZER)
DOC = Path(__file__).resolve().parents[3] / "docs" / "rewards.md"
ALL = r"samples p0#0 \.\. p2#1 \(6 responses\)"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy set in the environment must not intercept the loopback services."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def rollout() -> PackedBatch:
    """3 prompts ``a+(a+1)=`` with 2 responses each: the right answer with eos, then a+b+1 cut."""
    ids, prompt_mask, no_eos = [], [], []
    for a in (12, 13, 14):
        prompt = TOKENIZER(f"{a}+{a + 1}=")["input_ids"]
        seqs, masks, cuts = [], [], []
        for text, cut in ((str(2 * a + 1), False), (str(2 * a + 2), True)):
            resp = TOKENIZER(text, add_special_tokens=False)["input_ids"]
            resp += [] if cut else [TOKENIZER.eos_token_id]
            seqs.append(prompt + resp)
            masks.append([True] * len(prompt) + [False] * len(resp))
            cuts.append([cut])
        ids.append(seqs), prompt_mask.append(masks), no_eos.append(cuts)
    return PackedBatch.from_sequences(
        ["p0", "p1", "p2"],
        {"packed_input_ids": ids, "prompt_mask": prompt_mask, "seq_no_eos_mask": no_eos},
        dtypes={"prompt_mask": torch.bool, "seq_no_eos_mask": torch.bool},
        metadata={"answer": ["25", "27", "29"], "level": [1, 2, 3],
                  "source": [PurePosixPath(f"data/{i}") for i in range(3)]})


def numeric(body: dict) -> list[float]:
    """Scores a test can check: the completion as a number, +0.5 when truncated."""
    return [float(c) + 0.5 * s["truncated"] for c, s in zip(body["completions"], body["samples"],
                                                             strict=True)]


EXPECTED = [25.0, 26.5, 27.0, 28.5, 29.0, 30.5]


class Service:
    """A scripted service: ``reply(body, hit) -> (status, bytes, headers)``; it records requests."""

    def __init__(self, reply):
        self.reply = reply
        self.bodies: list[dict] = []
        self.content_types: list[str] = []
        self.hits = 0
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on shutdown: slow handlers return at once

    def handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with service.lock:
                    service.hits += 1
                    hit = service.hits
                    service.bodies.append(json.loads(raw))
                    service.content_types.append(self.headers["Content-Type"])
                status, body, headers = service.reply(service, json.loads(raw), hit)
                if service.release.is_set():
                    return
                with contextlib.suppress(OSError):  # the client may have timed out
                    self.send_response(status)
                    for k, v in {"Content-Length": str(len(body)), **headers}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], service: Service | None = None):
    """``handler`` served on 127.0.0.1 (a free port) in a thread; yields the /score URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.handle_error = lambda *args: None  # a client that hung up is not the test's failure
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/score"
    finally:
        if service is not None:
            service.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def ok(body: dict) -> tuple[int, bytes, dict]:
    return 200, json.dumps({"rewards": numeric(body)}).encode(), {"Content-Type": "application/json"}


def remote(url, **kw) -> RemoteRewardInterface:
    return RemoteRewardInterface(url, **{"timeout_s": 2.0, "backoff_s": 0.01, **kw})


# ---------------------------------------------------------------------- success


def test_scores_come_back_in_order_from_concurrent_requests():
    barrier = threading.Barrier(3, timeout=5)  # all three requests must be in flight at once

    def reply(service, body, hit):
        barrier.wait()
        return ok(body)

    service = Service(reply)
    with serving(service.handler(), service) as url:
        out = remote(url, request_size=2, max_concurrency=3, max_retries=0).inference(
            HANDLE, rollout())
    assert out.ids == ["p0", "p1", "p2"] and out.seqlens["rewards"] == [[1, 1]] * 3
    assert out.data["rewards"].tolist() == EXPECTED
    assert service.hits == 3 and service.content_types == ["application/json"] * 3
    assert all(len(b["completions"]) == 2 for b in service.bodies)
    seen = sorted((s for b in service.bodies for s in b["samples"]), key=lambda s: s["id"])
    assert seen[0] == {"answer": "25", "level": 1, "source": "data/0", "id": "p0#0",
                       "truncated": False}
    assert [s["id"] for s in seen] == ["p0#0", "p0#1", "p1#0", "p1#1", "p2#0", "p2#1"]
    assert [s["truncated"] for s in seen] == [False, True] * 3
    assert sorted(c for b in service.bodies for c in b["completions"]) == \
        ["25", "26", "27", "28", "29", "30"]


@pytest.mark.parametrize("status, headers", [(503, {}), (500, {}), (429, {"Retry-After": "0"})])
def test_server_errors_and_429_are_retried(status, headers):
    service = Service(lambda s, body, hit: (status, b"busy", headers) if hit == 1 else ok(body))
    with serving(service.handler(), service) as url:
        out = remote(url, max_retries=2).inference(HANDLE, rollout())
    assert out.data["rewards"].tolist() == EXPECTED
    assert service.hits == 2


# ---------------------------------------------------------------------- failures


def test_a_slow_service_times_out_after_the_retries():
    def reply(service, body, hit):
        service.release.wait(2.0)
        return ok(body)

    service = Service(reply)
    with serving(service.handler(), service) as url:
        with pytest.raises(RewardFunctionError) as err:
            remote(url, timeout_s=0.2, max_retries=2).inference(HANDLE, rollout())
        hits = service.hits
    message = str(err.value)
    assert url in message and "no reply within 0.2 s" in message
    assert "gave up after 3 attempts (reward.max_retries=2)" in message
    assert re.search(ALL, message)
    assert hits == 3


def test_client_errors_are_not_retried():
    service = Service(lambda s, body, hit: (400, b"completions must be\n  shorter", {}))
    with serving(service.handler(), service) as url:
        with pytest.raises(RewardFunctionError) as err:
            remote(url, max_retries=3, request_size=4).inference(HANDLE, rollout())
    message = str(err.value)
    assert url in message and "HTTP 400" in message and "'completions must be shorter'" in message
    assert re.search(r"samples p0#0 \.\. p1#1 \(4 responses\)|samples p2#0 \.\. p2#1 "
                     r"\(2 responses\)", message)
    assert service.hits <= 2  # one per request at most; none retried


@pytest.mark.parametrize("body, message", [
    (b"<html>oops</html>", r"the reply is not JSON: '<html>oops</html>'"),
    (b'{"score": [1, 2]}', r'the reply has no "rewards" list'),
    (b'{"rewards": [1.0]}', r'"rewards" holds 1 values for 6 completions'),
    (b'{"rewards": [0, 0, NaN, 0, 0, 0]}', r'"rewards"\[2\] is nan \(sample p1#0\); rewards must '
                                           r"be finite"),
    (b'{"rewards": [0, "1", 0, 0, 0, 0]}', r"\"rewards\"\[1\] is '1' \(sample p0#1\), not a number"),
])
def test_malformed_replies_fail_at_once(body, message):
    service = Service(lambda s, b, hit: (200, body, {"Content-Type": "application/json"}))
    with serving(service.handler(), service) as url:
        with pytest.raises(RewardFunctionError, match=message) as err:
            remote(url, max_retries=3).inference(HANDLE, rollout())
    assert url in str(err.value) and re.search(ALL, str(err.value))
    assert service.hits == 1


def test_no_service_is_a_connection_error_after_retries():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/score"
    with pytest.raises(RewardFunctionError, match="cannot connect") as err:
        remote(url, max_retries=1).inference(HANDLE, rollout())
    assert url in str(err.value) and "gave up after 2 attempts" in str(err.value)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/score", "http://", "127.0.0.1:8000/score", "",
                                 None, "http://127.0.0.1:99999/score", "http://a b/score",
                                 "http://user:secret@127.0.0.1/score"])
def test_bad_urls_fail_at_construction(url):
    with pytest.raises(RewardFunctionError, match="the remote reward URL"):
        RemoteRewardInterface(url)


def test_registered_as_an_interface():
    from rlcore.plugins import registry

    assert registry.load("interfaces", "remote_reward") is RemoteRewardInterface


# ---------------------------------------------------------------------- the documented example


def test_the_documented_example_server_scores_exact_answers():
    match = re.search(r"<!-- example: remote-reward-server.*?-->\s*```python\n(.*?)```",
                      DOC.read_text(), re.S)
    assert match, f"no example server code block in {DOC}"
    namespace = {"__name__": "rewards_doc_example"}
    exec(compile(match.group(1), str(DOC), "exec"), namespace)

    class Quiet(namespace["RewardHandler"]):
        def log_message(self, *args):
            pass

    with serving(Quiet) as url:
        out = remote(url, request_size=4, max_retries=0).inference(HANDLE, rollout())
    assert out.data["rewards"].tolist() == [1.0, 0.0] * 3

"""A remote reward service as a graph node: responses POSTed as JSON, one score back for each.

For ``reward.url``. The responses go out in requests of at most ``request_size``, up to
``max_concurrency`` at once; a request is retried on connection errors, timeouts, HTTP 429
and 5xx, with exponential backoff. Any other failure, or the last retry's, stops the run with
an error naming the URL and the request's sample ids: nothing scores 0 silently. The
protocol is in docs/rewards.md.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import random
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from rlcore.sdk import REWARDS, ModelHandle, ModelInterface, PackedBatch
from rlcore_plugin_algorithms.rewards import RewardFunctionError, per_sequence, responses

log = logging.getLogger(__name__)
EXCERPT_CHARS = 200
EXAMPLE_URL = "http://127.0.0.1:8000/score"


class _Retryable(Exception):
    """A failure worth another attempt: no connection, a timeout, HTTP 429 or 5xx."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure that another attempt would repeat: HTTP 3xx/4xx, a malformed reply."""


class _Stopped(Exception):
    """Another request of the batch failed first; this one gave up quietly."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects fail: urllib would turn the POST into a GET without the body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def check_url(url: Any) -> str:
    """``url`` if it is an http(s) URL with a host; a RewardFunctionError saying why not."""
    hint = f"give the service's address, e.g. reward.url={EXAMPLE_URL}"
    if not isinstance(url, str) or not url.strip():
        raise RewardFunctionError(f"the remote reward URL is empty ({url!r}): {hint}")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise RewardFunctionError(f"the remote reward URL {url!r} contains whitespace: {hint}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RewardFunctionError(
            f"the remote reward URL {url!r} is not an http:// or https:// URL with a host: {hint}")
    if "@" in parts.netloc:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        raise RewardFunctionError(f"the remote reward URL {shown!r} holds credentials, which are "
                                  "not supported (they would be printed in errors)")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise RewardFunctionError(f"the remote reward URL {url!r} has an invalid port: "
                                  f"{hint}") from None
    return url


def _jsonable(value: Any) -> Any:
    """``value`` with everything JSON cannot hold turned into ``str`` (tensors into lists)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy and torch values
    if callable(tolist):
        try:
            plain = tolist()
        except Exception:  # fall back to str below
            plain = value
        if type(plain) is not type(value):
            return _jsonable(plain)
    return str(value)


def _excerpt(raw: bytes | str) -> str:
    """The start of a reply body, on one line, for an error message."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def _retry_after(headers: Any) -> float | None:
    """A ``Retry-After`` header in seconds (the HTTP-date form is ignored)."""
    try:
        return max(0.0, float(headers.get("Retry-After")))
    except (TypeError, ValueError, AttributeError):
        return None


class RemoteRewardInterface(ModelInterface):
    """inference: ``rewards`` from an HTTP service, ``{"completions", "samples"}`` -> ``{"rewards"}``."""

    def __init__(self, url: str, timeout_s: float = 30.0, max_retries: int = 3,
                 request_size: int = 64, max_concurrency: int = 4, backoff_s: float = 0.5,
                 max_backoff_s: float = 10.0):
        self.url = check_url(url)
        if not timeout_s > 0:
            raise RewardFunctionError(f"remote reward timeout_s must be > 0, got {timeout_s}")
        if max_retries < 0 or request_size < 1 or max_concurrency < 1:
            raise RewardFunctionError(
                f"remote reward max_retries must be >= 0 (got {max_retries}), request_size and "
                f"max_concurrency >= 1 (got {request_size}, {max_concurrency})")
        if backoff_s < 0 or max_backoff_s < 0:
            raise RewardFunctionError("remote reward backoff_s and max_backoff_s must be >= 0")
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.request_size = int(request_size)
        self.max_concurrency = int(max_concurrency)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self._rng = random.Random()  # jitter only; leaves the global RNG (and resume) alone

    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        texts, samples, seq_ids = responses(handle.tokenizer, data)
        return per_sequence(data, REWARDS, self.score(texts, samples, seq_ids))

    def score(self, texts: list[str], samples: list[dict], seq_ids: list[str]) -> list[float]:
        """One score per response, in order; requests of ``request_size`` sent concurrently."""
        n = self.request_size
        chunks = [slice(i, i + n) for i in range(0, len(texts), n)]
        if not chunks:
            return []
        opener = urllib.request.build_opener(_NoRedirect)  # honours http(s)_proxy / no_proxy
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chunks)),
                                  thread_name_prefix="remote-reward")
        try:
            futures = [pool.submit(self._request, opener, texts[c], samples[c], seq_ids[c], stop)
                       for c in chunks]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f.exception() for f in futures if f in done and f.exception() is not None]
            if failed:
                stop.set()  # the others stop retrying; queued requests are cancelled below
                raise failed[0]
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return [s for f in futures for s in f.result()]

    # ------------------------------------------------------------------ one request

    def _request(self, opener: urllib.request.OpenerDirector, texts: list[str],
                 samples: list[dict], seq_ids: list[str], stop: threading.Event) -> list[float]:
        """Scores of one request, retried; a RewardFunctionError naming its samples if it fails."""
        body = json.dumps({"completions": texts, "samples": [_jsonable(s) for s in samples]},
                          allow_nan=False).encode()
        which = f"request for samples {seq_ids[0]} .. {seq_ids[-1]} ({len(seq_ids)} responses)"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            if stop.is_set():
                raise _Stopped
            try:
                return self._parse(self._post(opener, body), seq_ids)
            except _Fatal as exc:
                raise RewardFunctionError(f"remote reward {self.url}: {exc}; {which}") from None
            except _Retryable as exc:
                if attempt + 1 == attempts:
                    raise RewardFunctionError(
                        f"remote reward {self.url}: {exc}; gave up after {attempts} attempt"
                        f"{'s' if attempts > 1 else ''} (reward.max_retries={self.max_retries}); "
                        f"{which}") from None
                delay = min(self.backoff_s * 2 ** attempt, self.max_backoff_s)
                if exc.retry_after is not None:
                    delay = min(max(delay, exc.retry_after), self.max_backoff_s)
                delay *= 1 + 0.1 * self._rng.random()
                log.warning("remote reward %s: %s; retry %d of %d in %.2f s (%s)", self.url, exc,
                            attempt + 1, self.max_retries, delay, which)
                if stop.wait(delay):
                    raise _Stopped from None
        raise AssertionError("unreachable")

    def _post(self, opener: urllib.request.OpenerDirector, body: bytes) -> bytes:
        """The reply body of one POST; _Retryable or _Fatal on failure."""
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json"})
        timed_out = f"no reply within {self.timeout_s:g} s (reward.timeout_s)"
        try:
            with opener.open(request, timeout=self.timeout_s) as reply:
                return reply.read()
        except urllib.error.HTTPError as exc:
            try:
                text = _excerpt(exc.read())
            except (OSError, http.client.HTTPException):
                text = ""
            status = f"HTTP {exc.code} {exc.reason}" + (f": {text!r}" if text else "")
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(status, _retry_after(exc.headers)) from None
            if 300 <= exc.code < 400:
                status += (f" (a redirect to {exc.headers.get('Location')}; set reward.url to "
                           "the final address)")
            raise _Fatal(status) from None
        except TimeoutError:
            raise _Retryable(timed_out) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retryable(timed_out) from None
            raise _Retryable(f"cannot connect ({exc.reason}); is the service running?") from None
        except (OSError, http.client.HTTPException) as exc:
            raise _Retryable(f"the connection failed ({type(exc).__name__}: {exc})") from None

    @staticmethod
    def _parse(raw: bytes, seq_ids: list[str]) -> list[float]:
        """The reply's ``rewards``: exactly one finite number per completion."""
        try:
            reply = json.loads(raw)
        except ValueError:  # UnicodeDecodeError is one
            raise _Fatal(f"the reply is not JSON: {_excerpt(raw)!r}") from None
        rewards = reply.get("rewards") if isinstance(reply, dict) else None
        if not isinstance(rewards, list):
            raise _Fatal(f'the reply has no "rewards" list: {_excerpt(raw)!r}')
        if len(rewards) != len(seq_ids):
            raise _Fatal(f'"rewards" holds {len(rewards)} values for {len(seq_ids)} completions; '
                         "the service must return one per completion, in order")
        out = []
        for i, (sid, value) in enumerate(zip(seq_ids, rewards, strict=True)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _Fatal(f'"rewards"[{i}] is {value!r} (sample {sid}), not a number')
            try:
                value = float(value)
            except OverflowError:
                value = math.inf
            if not math.isfinite(value):
                raise _Fatal(f'"rewards"[{i}] is {value} (sample {sid}); rewards must be finite')
            out.append(value)
        return out

"""The built-in ``python`` environment: questions with exact answers that are easy to compute and
hard to guess, and a ``python`` tool that runs the model's code in the sandbox.

    user: What is the sum of the digits of 7**93?
    assistant: <tool_call>{"name":"python","arguments":{"code":"print(sum(...))"}}</tool_call>
    tool: 359      assistant: 359        -> reward 1
"""

from __future__ import annotations

import math
import random
import zlib
from typing import Any

from rlcore.sdk import ToolEnvironment, ToolError, render_call, tool_schema

DATA_SOURCE = "rlcore/python"
MAX_ANSWER = 2000  # characters of output that go back to the model


def _task(rng: random.Random) -> tuple[str, str, int]:
    """One question, the code that answers it and the answer."""
    kind = rng.randrange(4)
    if kind == 0:
        b, e = rng.randint(2, 9), rng.randint(20, 300)
        return (f"What is the sum of the digits of {b}**{e}?",
                f"print(sum(int(d) for d in str({b}**{e})))", sum(map(int, str(b**e))))
    if kind == 1:
        n = rng.randint(100, 20000)
        return (f"How many primes are there below {n}?",
                f"print(sum(all(k % p for p in range(2, int(k**0.5) + 1)) "
                f"for k in range(2, {n})))", _primes_below(n))
    if kind == 2:
        n = rng.randint(20, 500)
        return (f"How many digits does {n}! have?",
                f"import math\nprint(len(str(math.factorial({n}))))",
                len(str(math.factorial(n))))
    a, e, m = rng.randint(2, 999), rng.randint(100, 10**6), rng.randint(1000, 99999)
    return f"What is {a}**{e} mod {m}?", f"print(pow({a}, {e}, {m}))", pow(a, e, m)


def _primes_below(n: int) -> int:
    sieve = bytearray([1]) * n
    sieve[:2] = b"\0\0"
    for p in range(2, int(n**0.5) + 1):
        if sieve[p]:
            sieve[p * p::p] = bytes(len(range(p * p, n, p)))
    return sum(sieve)


class PythonEnvironment(ToolEnvironment):
    """Answer a question with the help of a ``python`` tool; reward 1 for the exact answer."""

    tools = [tool_schema("python", "Run Python code (standard library only) and return what "
                         "it prints; print the result you need",
                         {"code": {"type": "string", "description": "the program to run"}})]

    # What `rlcore train grpo --set env.name=python` needs beyond the presets' defaults: room
    # for a program in a turn.
    defaults = {"gen.max_new_tokens": 192, "env.max_turns": 3, "env.max_tokens": 384}

    def __init__(self, timeout_s: float = 5, memory_mb: int = 512, tool_format: str = "hermes"):
        self.timeout_s, self.memory_mb, self.tool_format = timeout_s, memory_mb, tool_format

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """The code's stdout, or the sandbox's one-line summary and the end of stderr."""
        from rlcore.sdk import run_code

        code = arguments.get("code")
        if set(arguments) != {"code"} or not isinstance(code, str):
            raise ToolError(f"python takes one string argument, code; got {sorted(arguments)}")
        result = run_code(code, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
        if result.ok:
            return result.stdout[-MAX_ANSWER:] or "(no output: print the result)"
        return f"{result.summary}\n{result.stderr[-MAX_ANSWER:]}".strip()

    def finish(self, text: str) -> float:
        """1.0 for the answer as written, or the same number (``1,024`` and ``1024.0`` too)."""
        answer, text = str(self.sample["answer"]).strip(), text.strip().rstrip(".")
        if text == answer:
            return 1.0
        try:
            return float(float(text.replace(",", "")) == float(answer))
        except ValueError:
            return 0.0

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        """``size`` questions (digit sums, prime counts, factorial lengths, modular powers) with
        the code that answers them; one in five questions is held out for ``eval``."""
        rng, rows = random.Random(f"{seed}:{split}"), []
        while len(rows) < size:
            question, code, answer = _task(rng)
            if (zlib.crc32(question.encode()) % 5 == 0) == (split == "eval"):
                rows.append({"prompt": question, "answer": str(answer), "code": code,
                             "data_source": DATA_SOURCE})
        return rows

    def demonstration(self, sample: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Ask the tool with the row's ``code``, then answer with what it printed."""
        if not sample.get("code"):
            return None
        call = render_call("python", {"code": sample["code"]}, self.tool_format)
        return [{"role": "user", "content": sample["prompt"]},
                {"role": "assistant", "content": call},
                {"role": "tool", "name": "python", "content": f"{sample['answer']}\n"},
                {"role": "assistant", "content": str(sample["answer"])}]

"""The built-in ``calculator`` environment: products of a 3-digit and a 1-digit number, which
the tiny built-in model cannot work out in its head but can with the ``calculator`` tool.

    user: 347*8=   assistant: <tool_call>{"name":"calculator",...}</tool_call>
    tool: 2776     assistant: 2776        -> reward 1
"""

from __future__ import annotations

import ast
import operator
import random
import threading
import zlib
from typing import Any

from rlcore.sdk import ToolEnvironment, ToolError, render_call, tool_schema

DATA_SOURCE = "rlcore/calculator"
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
MAX_EXPRESSION = 64  # characters
# Episodes step in threads, and CPython 3.11's ast.parse is not thread-safe (its AST conversion
# keeps a recursion depth in global state: "SystemError: AST constructor recursion depth
# mismatch" when a thread switch lands inside it), so one parse runs at a time.
_PARSE = threading.Lock()


def evaluate(expression: str) -> int:
    """An integer expression of + - * // % and parentheses, or :class:`ToolError`."""
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION:
        raise ToolError(f"expression must be a string of at most {MAX_EXPRESSION} characters")
    try:
        with _PARSE:
            tree = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        raise ToolError(f"cannot parse {expression!r}; write e.g. 347*8") from None

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.FloorDiv | ast.Mod) and right == 0:
                raise ToolError("division by zero")
            return _OPS[type(node.op)](left, right)
        raise ToolError(f"only integers and + - * // % are allowed in {expression!r}")

    result = value(tree)
    if abs(result) > 10**18:
        raise ToolError("the result is too large")
    return result


class Calculator(ToolEnvironment):
    """Answer ``a*b=`` with the ``calculator`` tool; reward 1 for the exact product, else 0."""

    tools = [tool_schema("calculator", "Evaluate an integer arithmetic expression",
                         {"expression": {"type": "string", "description": "e.g. 347*8"}})]
    # What `rlcore train grpo --set env.name=calculator` needs beyond the presets' defaults.
    defaults = {"gen.max_new_tokens": 96, "env.max_turns": 3, "env.max_tokens": 160,
                "warm_start.sft_steps": 150, "run.max_steps": 100, "run.eval_every": 10,
                "run.batch_size": 16, "eval.size": 128, "train.scheduler.warmup_steps": 20}

    def __init__(self, tool_format: str = "hermes"):
        self.tool_format = tool_format

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        if set(arguments) != {"expression"}:
            raise ToolError(f"calculator takes one argument, expression; got {sorted(arguments)}")
        return str(evaluate(arguments["expression"]))

    def finish(self, text: str) -> float:
        return float(text.strip() == str(self.sample["answer"]))

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        """``size`` problems ``a*b=`` (a in 100..999, b in 2..9); one in ten is held out."""
        rng, rows = random.Random(f"{seed}:{split}"), []
        while len(rows) < size:
            a, b = rng.randint(100, 999), rng.randint(2, 9)
            if (zlib.crc32(f"{a}*{b}".encode()) % 10 == 0) == (split == "eval"):
                rows.append({"prompt": f"{a}*{b}=", "answer": str(a * b),
                             "data_source": DATA_SOURCE})
        return rows

    def demonstration(self, sample: dict[str, Any]) -> list[dict[str, Any]]:
        expression = str(sample["prompt"]).rstrip("=")
        return [{"role": "user", "content": sample["prompt"]},
                {"role": "assistant",
                 "content": render_call("calculator", {"expression": expression},
                                        self.tool_format)},
                {"role": "tool", "content": str(evaluate(expression))},
                {"role": "assistant", "content": str(sample["answer"])}]

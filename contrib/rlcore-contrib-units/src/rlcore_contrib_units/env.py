"""The ``units`` environment: answer a unit-conversion question, with a ``convert`` tool.

One episode: the user asks "How many centimetres are in 3.5 metres?"; the model may call
``convert(value, from_unit, to_unit)`` (a tool message answers each call, ``error: ...`` for an
unknown unit or a bad argument), then answers in words. The reward is 1.0 when the last number
of the answer equals the row's ``answer`` within a relative ``tolerance``, else 0.0.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from typing import Any

from rlcore.sdk import ToolEnvironment, ToolError, render_call, tool_schema

# unit -> (dimension, size in the dimension's base unit: metre, gram, second)
UNITS: dict[str, tuple[str, float]] = {
    "millimetre": ("length", 0.001), "centimetre": ("length", 0.01), "metre": ("length", 1.0),
    "kilometre": ("length", 1000.0), "inch": ("length", 0.0254), "foot": ("length", 0.3048),
    "yard": ("length", 0.9144), "mile": ("length", 1609.344),
    "milligram": ("mass", 0.001), "gram": ("mass", 1.0), "kilogram": ("mass", 1000.0),
    "tonne": ("mass", 1e6), "ounce": ("mass", 28.349523125), "pound": ("mass", 453.59237),
    "second": ("time", 1.0), "minute": ("time", 60.0), "hour": ("time", 3600.0),
    "day": ("time", 86400.0), "week": ("time", 604800.0),
}
PLURALS = {unit: {"inch": "inches", "foot": "feet"}.get(unit, unit + "s") for unit in UNITS}
ABBREVIATIONS = {"mm": "millimetre", "cm": "centimetre", "m": "metre", "km": "kilometre",
                 "in": "inch", "ft": "foot", "yd": "yard", "mi": "mile", "mg": "milligram",
                 "g": "gram", "kg": "kilogram", "t": "tonne", "oz": "ounce", "lb": "pound",
                 "lbs": "pound", "s": "second", "sec": "second", "min": "minute", "h": "hour",
                 "hr": "hour", "d": "day", "wk": "week"}
ALIASES = {**ABBREVIATIONS, **{alias: unit for unit in UNITS for alias in (
    unit, PLURALS[unit], unit.replace("metre", "meter"), PLURALS[unit].replace("metre", "meter"))}}
VALUES = (0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7.5, 8, 10, 12, 15, 20, 25, 50, 100)
EVAL_ONE_IN = 5  # a question is held out for eval when the hash of its text says so
NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def unit_named(name: Any) -> str:
    """The unit ``name`` means (``cm``, ``metres``, ``Meter``, ...); a ToolError names the known ones."""
    unit = ALIASES.get(str(name).strip().lower())
    if unit is None:
        raise ToolError(f"unknown unit {name!r}; the units are {', '.join(UNITS)}")
    return unit


def convert(value: Any, from_unit: Any, to_unit: Any) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (12 significant digits)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ToolError(f"value must be a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ToolError(f"value must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise ToolError(f"value must be a finite number, not {value!r}")
    (dim_a, size_a), (dim_b, size_b) = UNITS[unit_named(from_unit)], UNITS[unit_named(to_unit)]
    if dim_a != dim_b:
        raise ToolError(f"cannot convert {from_unit} ({dim_a}) to {to_unit} ({dim_b})")
    return float(f"{number * size_a / size_b:.12g}")


def number_text(x: float) -> str:
    return f"{x:.12g}"


def question(value: float, a: str, b: str) -> str:
    return f"How many {PLURALS[b]} are in {value:g} {a if value == 1 else PLURALS[a]}?"


def all_questions(split: str) -> list[dict[str, Any]]:
    """Every question of ``split`` (``train`` or ``eval``, disjoint by a hash of the text)."""
    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', not {split!r}")
    rows = []
    for a, (dim_a, _) in UNITS.items():
        for b, (dim_b, _) in UNITS.items():
            for value in VALUES if a != b and dim_a == dim_b else ():
                answer = number_text(convert(value, a, b))
                text = question(value, a, b)
                if "e" in answer or len(answer) > 10:  # tiny or long answers: not a nice task
                    continue
                if (zlib.crc32(text.encode()) % EVAL_ONE_IN == 0) == (split == "eval"):
                    rows.append({"prompt": text, "answer": answer, "value": value,
                                 "from_unit": a, "to_unit": b, "data_source": "units"})
    return rows


class UnitsEnvironment(ToolEnvironment):
    """Unit conversion (length, mass, time) with a ``convert`` tool; its own tasks.

    ``tolerance``: the relative difference an answer may have from the row's ``answer``;
    ``tool_format``: how the demonstrations write their call (``hermes`` or ``llama3_json``).
    """

    tools = [tool_schema(
        "convert", "Convert a value from one unit of length, mass or time to another.",
        {"value": {"type": "number", "description": "the amount, e.g. 3.5"},
         "from_unit": {"type": "string", "description": "its unit, e.g. metre, cm, pound, hour"},
         "to_unit": {"type": "string", "description": "the unit wanted, e.g. centimetre"}})]

    def __init__(self, tolerance: float = 1e-4, tool_format: str = "hermes") -> None:
        self.tolerance = float(tolerance)
        self.tool_format = tool_format

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        expected = {"value", "from_unit", "to_unit"}
        if set(arguments) != expected:
            raise ToolError(f"convert takes value, from_unit and to_unit; got {sorted(arguments)}")
        result = convert(arguments["value"], arguments["from_unit"], arguments["to_unit"])
        return f"{number_text(result)} {PLURALS[unit_named(arguments['to_unit'])]}"

    def finish(self, text: str) -> float:
        numbers = NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3})", "", text))
        if not numbers:
            return 0.0
        answer = float(self.sample["answer"])
        return 1.0 if math.isclose(float(numbers[-1]), answer, rel_tol=self.tolerance,
                                   abs_tol=1e-12) else 0.0

    @classmethod
    def tasks(cls, split: str, size: int, seed: int) -> list[dict[str, Any]]:
        pool = all_questions(split)
        order = random.Random(seed).sample(pool, len(pool))
        return [dict(order[i % len(order)]) for i in range(size)]

    def demonstration(self, sample: dict[str, Any]) -> list[dict[str, Any]] | None:
        if not {"value", "from_unit", "to_unit"} <= set(sample):
            return None  # a dataset row without the conversion spelled out
        args = {k: sample[k] for k in ("value", "from_unit", "to_unit")}
        result = self.call("convert", args)
        return [*self.first_messages(sample),
                {"role": "assistant", "content": render_call("convert", args, self.tool_format)},
                {"role": "tool", "name": "convert", "content": result},
                {"role": "assistant", "content": f"{result}."}]

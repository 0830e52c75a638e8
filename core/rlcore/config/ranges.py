"""Declared ranges of numeric config fields, checked once the config is resolved.

A field states its range in its metadata, in interval notation:
``field(default=1e-5, metadata={"help": "...", "range": "(0, inf)"})``. ``[``/``]``
include a bound, ``(``/``)`` exclude it, ``inf`` is unbounded. Values of every
numeric field are checked (nan is never accepted), and an error names the key as
the user writes it and where the value came from.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from rlcore.errors import ConfigError

RANGE = "range"
_SPEC = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


@dataclass(frozen=True)
class Range:
    """An interval ``low..high``; each bound included or not."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.low_closed else value > self.low
        below = value <= self.high if self.high_closed else value < self.high
        return above and below

    def __str__(self) -> str:
        """``"> 0"``, ``">= 1"``, ``"in [0, 1)"``: the range as messages and ``rlcore info`` state it."""
        if math.isinf(self.high) and not math.isinf(self.low):
            return f"{'>=' if self.low_closed else '>'} {_num(self.low)}"
        if math.isinf(self.low) and not math.isinf(self.high):
            return f"{'<=' if self.high_closed else '<'} {_num(self.high)}"
        return (f"in {'[' if self.low_closed else '('}{_num(self.low)}, "
                f"{_num(self.high)}{']' if self.high_closed else ')'}")


def _num(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


@cache
def parse_range(spec: str) -> Range:
    """The :class:`Range` of ``"[0, 1)"``-style text; a ConfigError for anything else."""
    match = _SPEC.match(spec)
    try:
        if match is None:
            raise ValueError
        low, high = float(match[2]), float(match[3])
        if math.isnan(low) or math.isnan(high) or low > high:
            raise ValueError
    except ValueError:
        raise ConfigError(f"range {spec!r} is not an interval like '[0, 1]', '(0, inf)' or "
                          "'[1, inf)'; fix the field's metadata") from None
    return Range(low, high, match[1] == "[", match[4] == "]")


def field_range(f: dataclasses.Field) -> Range | None:
    """The declared range of a dataclass field, if any."""
    spec = f.metadata.get(RANGE)
    return parse_range(spec) if spec is not None else None


def check_value(value: Any, rng: Range | None, key: str, source: str) -> None:
    """Raise a ConfigError when a number (or each number of a list) is nan or outside ``rng``."""
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_value(item, rng, f"{key}[{i}]", source)
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    nan = isinstance(value, float) and math.isnan(value)
    if nan or (rng is not None and value not in rng):
        if isinstance(value, int):
            want = f"an integer {rng}"
        else:
            finite = rng is not None and math.isinf(rng.high) and not rng.high_closed
            want = f"a {'finite ' if finite else ''}number{f' {rng}' if rng else ''}"
        raise ConfigError(f"config key {key!r}: expected {want}, got {value!r} (from {source})")


def check_ranges(obj: Any, prefix: str = "", sources: dict[str, str] | None = None,
                 default_source: str = "defaults") -> None:
    """Check every numeric field of a config dataclass (and its sections) against its range.

    ``sources`` maps dotted keys to where their values came from (``--set ...``,
    ``file.yaml:LINE``); other values are reported as coming from ``default_source``.
    """
    sources = sources or {}
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        key, value = f"{prefix}{f.name}", getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_ranges(value, key + ".", sources, sources.get(key, default_source))
        else:
            check_value(value, field_range(f), key, sources.get(key, default_source))

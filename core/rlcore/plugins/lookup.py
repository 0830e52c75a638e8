"""'Did you mean' suggestions for names that nothing registers."""

from __future__ import annotations

import difflib

from rlcore.errors import UnknownItemError


def close_matches(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Candidates that look like ``name``, best first."""
    return difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)


def did_you_mean(name: str, candidates: list[str], prefix: str = "") -> str:
    """A ``did you mean ...?`` phrase (each match shown after ``prefix``), or an empty string."""
    matches = close_matches(name, candidates)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(prefix + m) for m in matches) + "?"


def unknown_item_error(kind: str, name: str, available: list[str]) -> UnknownItemError:
    """An error that names what exists and suggests the closest names."""
    listing = ", ".join(sorted(available)) or "none (is a plugin installed? see `rlcore list-plugins`)"
    return UnknownItemError(f"no {kind} named {name!r}.{did_you_mean(name, available)} Available: {listing}.")

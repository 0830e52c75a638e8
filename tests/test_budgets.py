"""Per-layer size budgets of core/rlcore, read from the table in docs/internals.md.

``pytest -s tests/test_budgets.py`` or ``python tests/test_budgets.py`` prints the counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "rlcore"
DOC = ROOT / "docs" / "internals.md"
ROW = re.compile(r"^\| ([^|]+?) \| ((?:`[^`]+` ?)+) \| ([\d,]+) \|(?:[^|]*\|)?$")  # then: why raised


def budgets() -> dict[str, tuple[list[str], int]]:
    """``layer -> (paths under core/rlcore, budget)``: the "Size budgets" table of the doc."""
    section = DOC.read_text().split("## Size budgets", 1)[1].split("\n## ", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines()]
    table = {m[1]: (re.findall(r"`([^`]+)`", m[2]), int(m[3].replace(",", ""))) for m in rows if m}
    assert table, f"no budget rows under '## Size budgets' in {DOC}"
    return table


def layer_of(path: Path, table: dict[str, tuple[list[str], int]]) -> list[str]:
    """The layers whose paths hold ``path`` (one, when the table is right)."""
    rel = path.relative_to(PACKAGE).as_posix()
    return [layer for layer, (paths, _) in table.items()
            if any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in paths)]


def line_counts() -> dict[str, int]:
    """Non-blank lines of the .py files of each layer."""
    table = budgets()
    counts = dict.fromkeys(table, 0)
    for path in sorted(PACKAGE.rglob("*.py")):
        for layer in layer_of(path, table):
            counts[layer] += sum(1 for line in path.read_text().splitlines() if line.strip())
    return counts


def format_table() -> str:
    """The layers, their counts and budgets, as aligned text."""
    counts, table = line_counts(), budgets()
    width = max(map(len, table))
    lines = [f"{'layer':<{width}}  {'lines':>6}  {'budget':>6}"]
    for layer, (_, budget) in table.items():
        over = "  OVER" if counts[layer] > budget else ""
        lines.append(f"{layer:<{width}}  {counts[layer]:>6}  {budget:>6}{over}")
    return "\n".join(lines)


def test_every_module_belongs_to_one_layer():
    table = budgets()
    wrong = {p.relative_to(PACKAGE).as_posix(): layer_of(p, table)
             for p in PACKAGE.rglob("*.py") if len(layer_of(p, table)) != 1}
    assert not wrong, f"modules in no layer or in several (add them to {DOC.name}): {wrong}"


def test_print_the_table():
    print("\n" + format_table())


@pytest.mark.parametrize("layer", list(budgets()))
def test_layer_is_within_its_budget(layer):
    count, budget = line_counts()[layer], budgets()[layer][1]
    assert count <= budget, (f"{layer} has {count} non-blank lines of Python, over its budget "
                             f"of {budget} (docs/internals.md, Size budgets)")


if __name__ == "__main__":
    print(format_table())

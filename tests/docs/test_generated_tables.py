"""Tables in the docs that copy a table of the code: each must equal its source, row for row.

- docs/config.md "Renamed keys": ``_MOVED`` of the RL config (old key -> new key);
- docs/ppo.md "Batch keys": ``rlcore.data.trajectory.TRAJECTORY``.

On a failure the message prints the table as it should read, ready to paste.
"""

from __future__ import annotations

from doc_blocks import ROOT

from rlcore.data.trajectory import TRAJECTORY


def _table_after(page: str, header: str) -> list[str]:
    """The rows (separator excluded) of the markdown table that starts with ``header``."""
    lines = (ROOT / "docs" / page).read_text().splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def _check(page: str, header: str, expected: list[str]) -> None:
    got = _table_after(page, header)
    assert got == expected, (f"the table under {header!r} in docs/{page} differs from the "
                             "code; it should read:\n" + "\n".join([header, *expected]))


def test_renamed_keys_table_is_the_rl_configs_moved_keys() -> None:
    from rlcore_plugin_algorithms.rl_config import _MOVED, renamed_keys

    rows = [f"| `SECTION.{old}` | `{new}` |" for old, new in _MOVED.items()]
    extra = {k: v for k, v in renamed_keys("ppo").items() if not k.startswith("ppo.")}
    assert extra == {"critic_train": "critic.train"}, extra  # the one row written by hand
    rows.append("| `critic_train` (the section, any key under it) | `critic.train` |")
    _check("config.md", "| old key | new key |", rows)


def test_batch_keys_table_is_the_trajectory() -> None:
    rows = [f"| `{f.key}` | {f.per} | {f.doc} |" for f in TRAJECTORY]
    _check("ppo.md", "| key | per | what |", rows)


def test_parity_table_names_every_conformance_variant() -> None:
    """docs/families.md's measured parity table (scripts/parity_table.py) covers every variant."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("parity_table", ROOT / "scripts" / "parity_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problems = module.check()
    assert not problems, "\n".join(problems) + "\nrun: .venv/bin/python scripts/parity_table.py"

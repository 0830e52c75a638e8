"""Generate docs/hooks.md (from the hookspecs) and docs/cli.md (from the typer app).

    python scripts/gen_docs.py          # rewrite both files
    python scripts/gen_docs.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import typer.main

from rlcore.cli.app import app
from rlcore.plugins import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def hooks_md() -> str:
    """Every hook's signature and docstring."""
    lines = [
        "# Hook reference",
        "",
        "Generated from `core/rlcore/plugins/hookspecs.py` by `python scripts/gen_docs.py`.",
        "Implement a hook with `@rlcore.hookimpl` in your plugin module (see docs/plugins.md).",
        "Every hook is called through pluggy's relay, so `tryfirst`, `trylast` and wrappers",
        "work; each plugin's implementation is isolated, and a failure is reported under the",
        "plugin's name (see \"How hooks are called\" in docs/plugins.md).",
        "",
        "Guides that implement hooks: [a dataset](guides/custom-dataset.md),",
        "[a model family](guides/new-family.md), [a reward interface](guides/classifier-reward.md),",
        "[an experiment](guides/new-dataflow.md), [an advantage estimator or a policy",
        "loss](guides/new-estimator.md) (`rlcore_advantage_estimators`, `rlcore_policy_losses`).",
        "",
    ]
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("rlcore_"):
            continue
        lines += [f"## `{name}{inspect.signature(fn)}`", "", inspect.getdoc(fn) or "", ""]
    return "\n".join(lines).rstrip() + "\n"


def cli_md() -> str:
    """Every command's usage, description and options."""
    group = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the typer app by `python scripts/gen_docs.py`. Every command also has `--help`.",
        "",
    ]
    commands = []
    for name, command in sorted(group.commands.items()):  # a group's commands: `sandbox run`
        subs = getattr(command, "commands", None)
        commands += [(f"{name} {sub}", c) for sub, c in sorted(subs.items())] if subs else \
            [(name, command)]
    for name, command in commands:
        args = " ".join(p.name.upper() for p in command.params if p.param_type_name == "argument")
        lines += [f"## `{' '.join(filter(None, ['rlcore', name, args]))}`", ""]
        lines += [inspect.cleandoc(command.help or ""), ""]
        options = [p for p in command.params if p.param_type_name == "option"]
        if options:
            lines += ["| option | default | meaning |", "|---|---|---|"]
            for p in options:
                flags = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
                value = getattr(p.default, "value", p.default)  # enums by value, on any Python
                default = "" if value in (None, False, [], ()) else f"`{value}`"
                lines.append(f"| {flags} | {default} | {(p.help or '').replace('|', '/')} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    outputs = {DOCS / "hooks.md": hooks_md(), DOCS / "cli.md": cli_md()}
    if "--check" in sys.argv:
        stale = [str(p) for p, text in outputs.items() if not p.is_file() or p.read_text() != text]
        if stale:
            print("out of date (run `python scripts/gen_docs.py`):", ", ".join(stale))
            return 1
        print("docs up to date")
        return 0
    for path, text in outputs.items():
        path.write_text(text)
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

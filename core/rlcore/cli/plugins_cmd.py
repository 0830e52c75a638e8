"""``rlcore list-plugins``, ``rlcore list KIND`` and ``rlcore info KIND NAME``."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlcore.errors import RlcoreError
from rlcore.plugins.records import KINDS, kind_named

console = Console()

STATUS_STYLE = {"active": "green", "disabled": "yellow", "incompatible": "magenta", "error": "red"}
KIND_HELP = f"What to show: {', '.join(KINDS)} (or the singular)."


def list_plugins(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show the traceback of each failed plugin."),
) -> None:
    """List installed plugins with their version, status and what they provide.

    Status is one of: active, disabled (blocked by RLCORE_PLUGINS_BLOCK or not in
    RLCORE_PLUGINS_ALLOW), incompatible (needs another rlcore version) or error
    (failed to load; `-v` shows why).
    """
    from rlcore.plugins.manager import get_manager

    plugins = get_manager().plugins
    if as_json:
        rows = [
            {
                "name": p.name,
                "distribution": p.dist,
                "version": p.version,
                "status": p.status,
                "reason": p.reason,
                "provides": p.provides,
                **({"traceback": p.traceback} if verbose else {}),
            }
            for p in plugins
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="rlcore plugins")
    for column in ("name", "distribution", "version", "status", "provides"):
        # Names fold onto a second line in a narrow terminal rather than being cut.
        table.add_column(column, overflow="fold", min_width=8 if column != "version" else None)
    for p in plugins:
        provides = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(p.provides.items()))
        status = f"[{STATUS_STYLE[p.status]}]{p.status}[/]"
        if p.reason:
            status += f"\n{escape(p.reason)}"
        table.add_row(p.name, p.dist or "-", p.version or "-", status, escape(provides) or "-")
    console.print(table)
    if verbose:
        for p in plugins:
            if p.traceback:
                console.rule(f"{p.name}: traceback")
                console.print(escape(p.traceback), highlight=False)
    elif any(p.status == "error" for p in plugins):
        console.print("Some plugins failed to load; run `rlcore list-plugins -v` for tracebacks.")
    missing_kinds_hint(plugins)


def missing_kinds_hint(plugins: list) -> None:
    """Say which package to install when no active plugin provides families or experiments."""
    from rlcore.first_party import install_hint

    for kind in ("families", "experiments"):
        hint = install_hint(kind)
        if hint and not any(kind in p.provides for p in plugins if p.status == "active"):
            console.print(f"No {kind} installed. {escape(hint)}", soft_wrap=True)  # keep commands whole


def list_items(kind: str = typer.Argument(..., help=KIND_HELP, show_default=False)) -> None:
    """List the registered datasets, families, interfaces, experiments, rewards or backends.

    A name that two plugins register without an override is listed once per plugin and
    marked `conflict`; it fails only when used. A replaced one is marked `overridden`.
    """
    from rlcore.plugins import registry

    plural = kind_named(kind).plural
    rows = registry.listing(plural)
    table = Table(title=f"rlcore {plural}")
    for column in ("name", "provided by", "description"):
        table.add_column(column, overflow="fold")
    for name, record, origin, note in rows:
        shown = f"{escape(name)} [red]({note})[/]" if note == "conflict" else (
            f"{escape(name)} [dim]({note})[/]" if note else escape(name))
        table.add_row(shown, escape(origin), escape(record.doc))
    console.print(table)
    if not rows:
        from rlcore.first_party import install_hint

        hint = install_hint(plural) or "Install a plugin that provides some."
        console.print(f"No {plural} registered. {escape(hint)}", soft_wrap=True)
    elif any(note == "conflict" for *_, note in rows):
        console.print("Names marked (conflict) fail when used; `rlcore list-plugins` says how to resolve them.")


RECORD_BASICS = {"name", "impl", "doc", "override", "config"}


def info(
    kind: str = typer.Argument(..., help=KIND_HELP, show_default=False),
    name: str = typer.Argument(..., help="The item's name, as `rlcore list KIND` shows it."),
    section: list[str] = typer.Option([], "--section", help=(
        "Show only this config section, e.g. `gen` (repeatable).")),
    keys: list[str] = typer.Option([], "--keys", help=(
        "Show only the config keys that match this pattern, e.g. 'policy.*' (fnmatch; repeatable).")),
) -> None:
    """Show an item's documentation, where it comes from, and its config, section by section.

    Each config key is shown as `key = value` (the value a run starts from), its type and
    range, and its help on the next line. Examples:

    * `rlcore info experiments ppo --section gen --section kl`
    * `rlcore info experiments ppo --keys 'policy.*' --keys '*.lr'`

    For a reward function: its docstring and a table of its parameters (name, type,
    default), which `--set reward.args.PARAM=VALUE` (the only function) or
    `--set reward.params.NAME.PARAM=VALUE` sets. For an environment: its tools, and whether
    it has tasks of its own and demonstrations.
    """
    import dataclasses
    import inspect

    from rlcore.plugins import registry
    from rlcore.plugins.records import load_object

    kind_ = kind_named(kind)
    is_reward = kind_.plural == "rewards"
    record = registry.get(kind_.plural, name)
    config_ref = getattr(record, "config", None)
    filtered = bool(section or keys)
    if filtered and not config_ref:
        raise RlcoreError(f"--section and --keys select config keys; {kind_.singular} {name!r} "
                          "has no config")
    config, chosen = None, {}
    if config_ref:  # chosen before anything is printed, so that a bad filter is one line
        if kind_.plural == "experiments":  # the values a run starts from, as --print-config
            from rlcore.config import experiment_config

            config = experiment_config(name)[1]
        else:
            config = load_object(config_ref)()
        chosen = select_config(config, section, keys)
    console.print(f"[bold]{kind_.singular} {name}[/]  ({registry.provider(kind_.plural, name)})")
    if filtered:  # only the keys asked for
        print_config(config, chosen)
        return
    console.print(f"implementation: {record.impl}")
    for field in dataclasses.fields(record):  # what the kind's record adds (hf_model_types, ...)
        if field.name not in RECORD_BASICS:
            value = getattr(record, field.name)
            console.print(f"{field.name}: {', '.join(value) if isinstance(value, tuple) else value}")
    if record.doc:
        console.print(f"\n{escape(record.doc)}")
    if not config_ref:
        obj = record.load()
        doc = inspect.getdoc(obj)
        if doc and is_reward:
            doc = reflow(doc)
        if doc:
            console.print(f"\n{escape(doc)}", highlight=not is_reward)
        if is_reward:
            _print_reward_parameters(name, obj)
        if kind_.plural == "environments":
            _print_environment(obj)
        return
    print_config(config, chosen)


TOP_LEVEL = "(top level)"
Row = tuple[str, str, object, str]


def config_sections(config: object) -> dict[str, list[Row]]:
    """The ``describe_fields`` rows of ``config`` by section (a key's first part), in order."""
    from rlcore.config import describe_fields

    sections: dict[str, list[Row]] = {}
    for row in describe_fields(config):
        head, dot, _ = row[0].partition(".")
        sections.setdefault(head if dot else TOP_LEVEL, []).append(row)
    return sections


def select_config(config: object, only: list[str], patterns: list[str]) -> dict[str, list[Row]]:
    """The sections named in ``only`` (all when empty), each with its keys that match one of
    ``patterns`` (fnmatch; all when empty); a name or pattern that selects nothing is an error."""
    from fnmatch import fnmatchcase

    from rlcore.plugins.lookup import did_you_mean

    sections = config_sections(config)
    what = type(config).__name__
    for name in only:
        if name not in sections:
            raise RlcoreError(f"--section {name}: {what} has no such section."
                              f"{did_you_mean(name, list(sections))} Sections: "
                              f"{', '.join(sections)}.")
    chosen = {}
    for name, rows in sections.items():
        rows = [r for r in rows if not patterns or any(fnmatchcase(r[0], p) for p in patterns)]
        if rows and (not only or name in only):
            chosen[name] = rows
    if not chosen:
        keys = [r[0] for rows in sections.values() for r in rows]
        hint = did_you_mean(patterns[0].split(".")[0], list(sections), "") if patterns else ""
        raise RlcoreError(f"--keys {' '.join(patterns)}: no key of {what} matches"
                          f"{' in the sections chosen' if only else ''}.{hint} Keys look like "
                          f"{keys[0]!r}; --keys 'SECTION.*' selects a section.")
    return chosen


def print_config(config: object, chosen: dict[str, list[Row]]) -> None:
    """A heading per section, then each key as ``key = value  type`` and its help indented.

    Nothing is cut at any width: long lines wrap, and a key stays whole and copyable.
    """
    from rich.padding import Padding
    from rich.text import Text

    for name, rows in chosen.items():
        heading = Text(f"\n{name}", style="bold underline")
        doc = _section_doc(config, name)
        if doc:
            heading.append(f"  {doc}", style="dim")
        console.print(heading)
        for key, type_name, value, help_text in rows:
            line = Text("  ")
            line.append(key, style="bold cyan")
            line.append(f" = {value!r}")
            line.append(f"  {type_name}", style="dim")
            console.print(line)
            if help_text:
                console.print(Padding(Text(help_text), (0, 0, 0, 6), expand=False))


def _section_doc(config: object, section: str) -> str:
    """The first paragraph of a section's docstring, on one line."""
    import dataclasses
    import inspect

    value = getattr(config, section, None) if section != TOP_LEVEL else None
    if not dataclasses.is_dataclass(value):
        return ""
    doc = inspect.getdoc(type(value)) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "`")


def reflow(doc: str) -> str:
    """A docstring with each paragraph, and each item of an indented list (a line and the
    more indented lines after it), on one line, so that the terminal wraps them."""
    out: list[str] = []
    item_indent = -1
    for line in doc.splitlines():
        indent = len(line) - len(line.lstrip())
        joins = out and out[-1].strip() and line.strip() and (
            indent > item_indent >= 0 or (indent == 0 and item_indent < 0))
        if joins:
            out[-1] += " " + line.strip()
            continue
        out.append(line)
        item_indent = indent if indent > 0 and line.strip() else -1
    return "\n".join(out)


def reward_parameters(fn: object) -> list[tuple[str, str, str]]:
    """``(name, type, default)`` of each keyword parameter a reward function takes after
    ``(completions, samples)``, read from its signature without calling anything."""
    import inspect

    from rlcore.config.schema import type_name

    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    rows, skipped = [], 0
    for p in signature.parameters.values():
        if p.kind in positional and skipped < 2:
            skipped += 1
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            rows.append((f"**{p.name}", "any", "(any other keyword)"))
        elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
            annotation = p.annotation
            shown = "-" if annotation is p.empty else (
                annotation if isinstance(annotation, str) else type_name(annotation))
            default = "required" if p.default is p.empty else repr(p.default)
            rows.append((p.name, shown, default))
    return rows


def _print_reward_parameters(name: str, fn: object) -> None:
    rows = reward_parameters(fn)
    if not rows:
        console.print("\nparameters: none")
        return
    table = Table(title=f"parameters of {name}")
    table.add_column("parameter", no_wrap=True)
    table.add_column("type")
    table.add_column("default")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    example = next((r for r in rows if not r[0].startswith("*")), rows[0])
    console.print(escape(f"set with: --set reward.args.{example[0]}=... (when {name} is the "
                         f"only reward function), or --set reward.params.{name}.{example[0]}=..."),
                  highlight=False)


def _print_environment(cls: type) -> None:
    from rlcore.agents.environment import Environment

    console.print("\ntools:" if cls.tools else "\ntools: none")
    for fn in (tool["function"] for tool in cls.tools):  # schemas as EnvironmentConformance checks
        args = ", ".join(fn["parameters"]["properties"])
        console.print(escape(f"  {fn['name']}({args}): {fn['description']}"), highlight=False)
    for method in ("tasks", "demonstration"):  # yes when the class overrides the base's None
        own = getattr(cls, method).__qualname__ != getattr(Environment, method).__qualname__
        console.print(f"{method}: {'yes' if own else 'no'}")
    defaults = getattr(cls, "defaults", {})  # what a run gets where its config left a key
    if defaults:
        console.print(escape("defaults: " + ", ".join(f"{k}={v}" for k, v in defaults.items())),
                      highlight=False)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("list-plugins")(list_plugins)
    app.command("list")(list_items)
    app.command("info")(info)

"""The ``rlcore`` typer application and its entry point."""

from __future__ import annotations

import sys
import warnings

import typer
from rich.console import Console
from rich.markup import escape

import rlcore
from rlcore.errors import RlcoreError

HELP = (
    "rlcore: RLHF and LLM post-training from plugins.\n\n"
    "Start with `rlcore list-plugins` to see what is installed, "
    "`rlcore list experiments` for what you can train, and "
    "`rlcore train sft` to train a tiny model on the built-in task. Commands that plugins add "
    "are not listed here (listing them would import every plugin): "
    "`rlcore list-plugins` shows which plugins add commands (`cli_commands`), and "
    "`rlcore COMMAND --help` describes one."
)

err_console = Console(stderr=True)
_python_show_warning = warnings.showwarning


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rlcore {rlcore.__version__} (plugin API {rlcore.API_VERSION})")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """rlcore: RLHF and LLM post-training from plugins."""


def _flags_show_no_type() -> None:
    """typer's help shows a type after every option, ``<bool>`` after a flag too, which takes no
    value: show none there (plugins' commands included)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "rlcore_flags", False):
        return

    def display_type_rich(self, ctx):  # noqa: ANN001, ANN202 - typer's signature
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.rlcore_flags = True
    TyperOption.display_type_rich = display_type_rich


def build_app(with_plugins: bool = True) -> typer.Typer:
    """The root app: the core's commands, plus those plugins add when ``with_plugins``."""
    from rlcore.cli import (
        eval_cmd,
        export_cmd,
        generate_cmd,
        plot_cmd,
        plugins_cmd,
        sandbox_cmd,
        scaffold_cmd,
        serve_cmd,
        train_cmd,
    )

    _flags_show_no_type()

    root = typer.Typer(
        name="rlcore",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    root.callback()(_root)
    plugins_cmd.register(root)
    train_cmd.register(root)
    eval_cmd.register(root)
    export_cmd.register(root)
    generate_cmd.register(root)
    serve_cmd.register(root)
    plot_cmd.register(root)
    scaffold_cmd.register(root)
    sandbox_cmd.register(root)
    if with_plugins:
        add_plugin_commands(root)
    return root


def _command_name(info: typer.models.CommandInfo) -> str:
    return info.name or info.callback.__name__.replace("_", "-")


def add_plugin_commands(root: typer.Typer) -> None:
    """Add the commands plugins register through ``rlcore_cli_commands``; a name already
    taken is skipped with a warning (the core's commands always win)."""
    from rlcore.plugins.registry import hooks

    staging = typer.Typer()
    hooks().rlcore_cli_commands(app=staging)  # each plugin's call is isolated by the manager
    taken = {_command_name(c) for c in root.registered_commands}
    for command in staging.registered_commands:
        name = _command_name(command)
        if name in taken:
            where = getattr(command.callback, "__module__", "?")
            err_console.print(f"[yellow]warning:[/] command {name!r} from {escape(where)} is skipped: "
                              "`rlcore` already has a command of that name", highlight=False)
            continue
        taken.add(name)
        root.registered_commands.append(command)
    for group in staging.registered_groups:
        name = group.name or group.typer_instance.info.name
        if not isinstance(name, str) or name in taken:
            err_console.print(f"[yellow]warning:[/] a plugin's command group {name!r} is skipped: "
                              "it has no name or `rlcore` already has a command of that name",
                              highlight=False)
            continue
        taken.add(name)
        root.registered_groups.append(group)


# The core's commands only (docs and tests); main() adds the plugins' commands.
app = build_app(with_plugins=False)


def needs_plugin_commands(args: list[str]) -> bool:
    """Whether ``args`` may name a command that a plugin adds: not ``--version``, ``--help``,
    no command at all, or one of the core's, so those never wait for a plugin's import."""
    if any(a in ("--version", "--help", "-h") for a in args[:1]):
        return False
    command = next((a for a in args if not a.startswith("-")), None)
    core = {_command_name(c) for c in app.registered_commands} | {
        g.name for g in app.registered_groups}
    return command is not None and command not in core


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """rlcore's own notes (a renamed config key) as one line; other warnings as Python shows them."""
    from rlcore.errors import RenamedAttributeWarning, RenamedKeyWarning

    if issubclass(category, RenamedKeyWarning):
        err_console.print(f"[yellow]note:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    elif issubclass(category, RenamedAttributeWarning):  # where: the plugin's line
        err_console.print(f"[yellow]warning:[/] {escape(str(message))} ({filename}:{lineno})",
                          highlight=False, soft_wrap=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


def main() -> None:
    """Console-script entry point: user errors print one clear message, never a traceback."""
    from rlcore.runtime.stopping import RunInterrupted

    warnings.showwarning = _show_warning
    try:
        build_app(with_plugins=needs_plugin_commands(sys.argv[1:]))()
    except RunInterrupted as exc:
        err_console.print(f"[yellow]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except RlcoreError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)

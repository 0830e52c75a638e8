"""The ``rlcore`` typer application and its entry point."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

import rlcore
from rlcore.errors import RlcoreError

app = typer.Typer(
    name="rlcore",
    help=(
        "rlcore: RLHF and LLM post-training from plugins.\n\n"
        "Start with `rlcore list-plugins` to see what is installed, "
        "`rlcore list experiments` for what you can train, and "
        "`rlcore train sft` to train a tiny model on the built-in task."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rlcore {rlcore.__version__} (plugin API {rlcore.API_VERSION})")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """rlcore: RLHF and LLM post-training from plugins."""


def _register_commands() -> None:
    from rlcore.cli import plugins_cmd, scaffold_cmd, train_cmd

    plugins_cmd.register(app)
    train_cmd.register(app)
    scaffold_cmd.register(app)


_register_commands()


def main() -> None:
    """Console-script entry point: user errors print one clear message, never a traceback."""
    from rlcore.runtime.stopping import RunInterrupted

    try:
        app()
    except RunInterrupted as exc:
        err_console.print(f"[yellow]{escape(str(exc))}[/]", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except RlcoreError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)

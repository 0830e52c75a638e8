"""``rlcore sandbox run``: run a Python file in the sandbox that environments and the
``code_tests`` reward use, and show how it ended."""

from __future__ import annotations

from pathlib import Path

import typer

sandbox_app = typer.Typer(help="Run untrusted Python with limits (docs/sandbox.md).",
                          no_args_is_help=True)


@sandbox_app.command("run")
def run(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="The Python file to run."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Wall-clock limit, seconds."),
    memory: int = typer.Option(512, "--memory", min=16, help="Address-space limit, MB."),
) -> None:
    """Run FILE in the sandbox: print its status, limits, isolation and (capped) output.

    Exits 0 when the code ran ok, 1 otherwise. Example: `rlcore sandbox run attack.py --timeout 2`
    """
    from rlcore.agents.sandbox import run_code

    result = run_code(file.read_text(encoding="utf-8", errors="replace"),
                      timeout_s=timeout, memory_mb=memory)
    typer.echo(f"status: {result.status}  exit code: {result.exit_code}  "
               f"wall: {result.wall_s:.2f} s")
    typer.echo("limits: " + ", ".join(f"{k} {v}" for k, v in result.limits.items()))
    for key, value in result.isolation.items():
        typer.echo(f"isolation: {key}: {value}")
    typer.echo(result.summary)
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            typer.echo(f"--- {name} ---\n{text.rstrip()}")
    raise typer.Exit(0 if result.ok else 1)


def register(app: typer.Typer) -> None:
    """Attach ``rlcore sandbox`` to the root app."""
    app.add_typer(sandbox_app, name="sandbox")

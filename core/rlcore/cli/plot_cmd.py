"""``rlcore plot``: curves of one or several runs from their metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

import typer


def plot(
    run_dirs: list[Path] = typer.Argument(..., help="Run directories (each with metrics.jsonl)."),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Comma-separated metrics (default: the losses, reward/mean "
        "and eval/accuracy that the runs logged)."),
    out: Path | None = typer.Option(
        None, "-o", "--out", help="Write a PNG here (needs matplotlib: pip install 'rlcore[plot]'); "
        "without it (or without matplotlib), a text chart on the terminal."),
    width: int = typer.Option(60, "--width", help="Columns of the text chart.", min=8),
) -> None:
    """Draw the curves of one or several runs: a PNG with -o, else a text chart.

    Examples:

    * `rlcore plot runs/sft`
    * `rlcore plot runs/grpo-a runs/grpo-b --metrics reward/mean,eval/accuracy -o grpo.png`
    """
    from rlcore.plots import have_matplotlib, load_runs, text_chart, write_png

    wanted = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    runs, chosen = load_runs(run_dirs, wanted)
    if out is not None and have_matplotlib():
        typer.echo(f"wrote {write_png(runs, chosen, out)} ({', '.join(chosen)})")
        return
    if out is not None:
        typer.echo(f"note: no {out}: matplotlib is not installed (pip install 'rlcore[plot]'); "
                   "a text chart instead", err=True)
    typer.echo(text_chart(runs, chosen, width))


def register(app: typer.Typer) -> None:
    """Attach ``rlcore plot`` to the root app."""
    app.command("plot")(plot)

"""``rlcore plot`` on real runs: a text chart, a PNG with matplotlib, one-line errors; and the
curves.png a run writes at its end."""

import json

import pytest
from typer.testing import CliRunner

from rlcore.cli.app import app

runner = CliRunner()


def write_metrics(run_dir, rows):
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def test_text_chart_of_a_real_run_shows_its_loss_and_eval(sft_run):
    """Without -o: the run's loss and eval/accuracy as sparklines with first/last/min/max."""
    result = runner.invoke(app, ["plot", str(sft_run), "--width", "20"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "actor_train/loss" and "eval/accuracy" in lines
    assert "steps 1..30" in lines[1] and "first " in lines[1] and "last " in lines[1]
    spark = lines[2].strip()
    assert 2 <= len(spark) <= 20 and set(spark) <= set(" ▁▂▃▄▅▆▇█")


def test_several_runs_and_chosen_metrics(tmp_path):
    """Each run gets its own line under each metric; a run that lacks one says so."""
    a = write_metrics(tmp_path / "a", [{"step": s, "reward/mean": s / 4} for s in range(1, 5)])
    b = write_metrics(tmp_path / "b", [{"step": s, "reward/mean": 1 - s / 4, "kl/ref": 0.1}
                                       for s in range(1, 5)])
    result = runner.invoke(app, ["plot", str(a), str(b), "--metrics", "reward/mean,kl/ref"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "first 0.25  last 1" in out and "first 0.75  last 0" in out
    assert f"{a}: not logged" in out and "▁▃▆█" in out and "█▆▃▁" in out


def test_bad_input_is_one_line_naming_it(tmp_path):
    """A dir without metrics.jsonl lists what is there; an unknown metric lists the metrics."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text("{}\n")
    result = runner.invoke(app, ["plot", str(empty)])
    assert result.exit_code != 0
    assert f"{empty}: no metrics.jsonl (there: config.yaml)" in str(result.exception)
    run = write_metrics(tmp_path / "r", [{"step": 1, "sft/loss": 2.0}])
    result = runner.invoke(app, ["plot", str(run), "--metrics", "reward/mean"])
    assert "--metrics: no metric 'reward/mean'" in str(result.exception)
    assert "there: sft/loss" in str(result.exception)


def test_png_and_the_runs_own_curves(sft_run, tmp_path):
    """With matplotlib: -o writes a PNG, and the run wrote RUN_DIR/curves.png at its end."""
    pytest.importorskip("matplotlib")
    assert (sft_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "plots" / "sft.png"
    result = runner.invoke(app, ["plot", str(sft_run), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (actor_train/loss, eval/accuracy)" in result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_a_text_chart_and_a_note(tmp_path, monkeypatch):
    """-o without matplotlib: a note on stderr and the text chart; a run's end says nothing."""
    from rlcore import plots

    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    run = write_metrics(tmp_path / "r", [{"step": s, "sft/loss": 3.0 / s} for s in range(1, 4)])
    result = runner.invoke(app, ["plot", str(run), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 0, result.output
    assert "matplotlib is not installed" in result.output and "sft/loss" in result.output
    assert not (tmp_path / "x.png").exists()
    assert plots.curves_at_end(run) is None and not (run / "curves.png").exists()


def test_a_plot_that_fails_at_a_runs_end_is_a_warning(tmp_path):
    """curves_at_end never raises: it returns the reason (here, nothing to draw)."""
    pytest.importorskip("matplotlib")
    from rlcore.plots import curves_at_end

    run = write_metrics(tmp_path / "r", [{"step": 1, "time/step": 0.1}])
    assert "no curves.png in" in curves_at_end(run)

"""Progress people can read: plain lines off a terminal, headline metrics first, and a summary
that says which step each value is from."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from rlcore.runtime.metrics import MetricsLogger, read_metrics

LINE = re.compile(r"^step (\d+)/(\d+) \(\d+%\)  [\d.e+]+ steps/s  eta \S+  (.*)$")


def test_off_a_terminal_each_step_prints_a_line_with_the_headline_metrics(tmp_path, capsys):
    log = MetricsLogger(tmp_path, rank=0, total_steps=3, progress=True, log_every_s=0,
                        headline=["reward/mean", "eval/accuracy", "kl/ref"])
    log.start({})
    log.log(0, {"eval/accuracy": 0.25})  # the eval before training prints no line
    for step in (1, 2, 3):
        log.log(step, {"a/first_alphabetically": 9.0, "reward/mean": step / 10})
    log.finish()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [LINE.match(line).group(1, 2) for line in lines] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert LINE.match(lines[0]).group(3) == "reward/mean=0.1 eval/accuracy=0.25 (step 0)"
    assert "a/first_alphabetically" not in "".join(lines)  # the headline, not the first key
    assert "kl/ref" not in "".join(lines)  # never logged: no role made it


def test_the_interval_keeps_the_first_and_the_last_step(tmp_path, capsys):
    log = MetricsLogger(tmp_path, rank=0, total_steps=5, progress=True, log_every_s=3600,
                        terminal=False, headline=["loss"])
    log.start({})
    for step in range(1, 6):
        log.log(step, {"loss": 1.0 / step})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [LINE.match(line).group(1) for line in lines] == ["1", "5"]
    assert lines[-1].endswith("loss=0.2") and "eta 0s" in lines[-1]


def test_progress_false_prints_no_line(tmp_path, capsys):
    log = MetricsLogger(tmp_path, rank=0, total_steps=2, progress=False, log_every_s=0,
                        terminal=False)
    log.start({})
    log.log(1, {"loss": 1.0})
    assert capsys.readouterr().out == ""


def test_summary_lists_the_headline_first_with_the_step_of_each_value(tmp_path):
    from rich.console import Console

    from rlcore.runtime.metrics import summary_table

    log = MetricsLogger(tmp_path, rank=0, total_steps=3, progress=False,
                        headline=["reward/mean", "eval/accuracy", "kl/ref"])
    log.start({})
    log.log(2, {"a/loss": 1.0, "reward/mean": 0.5, "eval/accuracy": 0.75})
    log.log(3, {"a/loss": 0.5, "reward/mean": 0.6})
    summary = log.finish()
    assert summary["headline"] == ["reward/mean", "eval/accuracy"]  # kl/ref: never logged
    assert summary["last_step"] == {"a/loss": 3, "reward/mean": 3, "eval/accuracy": 2}
    console = Console(width=100, record=True)
    console.print(summary_table(summary))
    text = console.export_text()
    rows = [line for line in text.splitlines() if re.match(r"^│ \S", line)]
    assert [row.split()[1] for row in rows] == ["reward/mean", "eval/accuracy", "a/loss"]
    assert rows[1].split()[-2] == "2*" and rows[0].split()[-2] == "3"
    assert "*: not evaluated at the last step (3)" in text
    assert "kl/ref" not in text


TOY_RUN = textwrap.dedent("""
    import sys
    from runtime_toy import ToyConfig, ToyExperiment
    from rlcore.runtime.loop import run

    class Headlined(ToyExperiment):
        headline = ("eval/mse", "train/loss")

    cfg = ToyConfig()
    cfg.run.progress, cfg.run.log_every_s, cfg.run.eval_every = True, 0, 5
    run(Headlined(cfg), cfg, sys.argv[1], resume=False)
""")


def test_a_run_with_stdout_in_a_pipe_prints_progress_lines(tmp_path):
    """A real run (3 epochs of 8 batches, eval every 5 steps) with stdout piped, as under nohup."""
    out = subprocess.run([sys.executable, "-c", TOY_RUN, str(tmp_path)], capture_output=True,
                         text=True, timeout=300, check=True).stdout
    lines = [line for line in out.splitlines() if LINE.match(line)]
    assert len(lines) == 24, out
    assert re.search(r"eval/mse=\S+ \(step 20\) train/loss=\S+$", lines[-1]), lines[-1]
    assert re.search(r"eval/mse=\S+ train/loss=\S+$", lines[19]), lines[19]  # step 20 evaluated
    assert "*: not evaluated at the last step (24)" in out
    # grad_norm at ZeRO stage 0, the toy's default, on every step
    assert all("train/grad_norm" in r for r in read_metrics(tmp_path) if r["step"] > 0)


def test_log_every_s_may_change_on_resume_and_older_checkpoints_lack_it():
    from rlcore.runtime.checkpoint import config_changes

    assert config_changes({"run": {"seed": 1}}, {"run": {"seed": 1, "log_every_s": 30.0}}) == []
    assert config_changes({"run": {"log_every_s": 30.0}}, {"run": {"log_every_s": 0.0}}) == []


def test_the_live_bar_on_a_terminal_shows_the_headline(tmp_path):
    log = MetricsLogger(tmp_path, rank=0, total_steps=2, progress=True, terminal=True,
                        headline=["reward/mean", "eval/accuracy"])
    log.start({})
    log.log(1, {"a/first": 1.0, "b/second": 2.0, "eval/accuracy": 0.5, "reward/mean": 0.25})
    assert log._progress.tasks[0].fields["live"] == "reward/mean=0.25 eval/accuracy=0.5"
    log.finish()

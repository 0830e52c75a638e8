"""A loss that stops moving is a warning, in the run's output and its summary, not a silent "completed"."""

import json

import pytest

from rlcore.runtime.health import FlatLossWatch
from rlcore.runtime.metrics import MetricsLogger


def warnings_of(watch, losses, key="actor_train/loss"):
    return [(step, w) for step, loss in enumerate(losses, start=1)
            for w in watch.update(step, {key: loss, "reward/mean": 0.5})]


def test_a_loss_stuck_for_the_given_steps_warns_once():
    found = warnings_of(FlatLossWatch(5), [4.65, 4.6443, 4.6443, 4.6444, 4.6443, 4.6443, 4.6443])
    assert [step for step, _ in found] == [6]
    assert found[0][1].startswith("actor_train/loss has stayed at 4.644 for 5 steps (since step 2)")
    assert "train.optimizer.lr" in found[0][1]


@pytest.mark.parametrize("losses", [
    [2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4],  # learning
    [1.0, 1.0, 1.0, 1.0, 1.1, 1.1, 1.1],  # flat stretches shorter than 5
    [0.0, 0.0, 0.0, 0.0, 1e-6, 0.0, 0.0],  # zero, then moves
])
def test_a_moving_loss_never_warns(losses):
    assert warnings_of(FlatLossWatch(5), losses) == []


def test_only_losses_are_watched_and_zero_steps_turns_it_off():
    assert warnings_of(FlatLossWatch(3), [1.0] * 5, key="actor_train/lr") == []
    assert warnings_of(FlatLossWatch(0), [1.0] * 5) == []
    assert [s for s, _ in warnings_of(FlatLossWatch(3), [1.0] * 5, key="loss")] == [3]


def test_the_warning_is_printed_and_kept_in_the_summary(tmp_path, capsys):
    log = MetricsLogger(tmp_path, rank=0, total_steps=6, flat_loss_steps=4, progress=False)
    log.start({})
    for step in range(1, 7):
        log.log(step, {"sft/loss": 4.64})
    summary = log.finish("completed")
    assert summary["status"] == "completed" and len(summary["warnings"]) == 1
    assert summary["warnings"][0].startswith("sft/loss has stayed at 4.64 for 4 steps (since step 1)")
    assert json.loads((tmp_path / "summary.json").read_text())["warnings"] == summary["warnings"]
    assert "warning: sft/loss has stayed at 4.64" in capsys.readouterr().err

"""The plugin writes the metrics it receives through the hooks into readable event files."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import rlcore_plugin_tensorboard as plugin
from rlcore.plugins import registry


def test_hooks_write_scalars_that_tensorboard_reads(tmp_path):
    plugin.rlcore_run_start(run_dir=str(tmp_path), config={"experiment": "sft"}, rank=0,
                            start_step=0)
    for step, loss in enumerate([2.0, 1.5, 1.0], start=1):
        plugin.rlcore_step_end(step=step, metrics={"loss": loss, "note": "skip me"}, rank=0)
    plugin.rlcore_run_end(run_dir=str(tmp_path), summary={}, rank=0)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 2.0), (2, 1.5), (3, 1.0)]
    assert "sft" in events.Tensors("config")[0].tensor_proto.string_val[0].decode()


def test_other_ranks_write_nothing(tmp_path):
    plugin.rlcore_run_start(run_dir=str(tmp_path), config={}, rank=1, start_step=0)
    plugin.rlcore_step_end(step=1, metrics={"loss": 1.0}, rank=1)
    plugin.rlcore_run_end(run_dir=str(tmp_path), summary={}, rank=1)
    assert not (tmp_path / "tensorboard").exists()


def test_lifecycle_hooks_reach_the_plugin_through_the_registry(tmp_path, rlcore_plugins):
    hooks = registry.hooks()
    hooks.rlcore_run_start(run_dir=str(tmp_path), config={}, rank=0, start_step=0)
    hooks.rlcore_step_end(step=7, metrics={"reward": 0.25}, rank=0)
    hooks.rlcore_run_end(run_dir=str(tmp_path), summary={}, rank=0)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("reward")] == [(7, 0.25)]


def test_a_resumed_run_shows_each_step_once(tmp_path):
    def run(start_step, steps):
        plugin.rlcore_run_start(run_dir=str(tmp_path), config={}, rank=0, start_step=start_step)
        for step in steps:
            plugin.rlcore_step_end(step=step, metrics={"loss": float(10 * start_step + step)},
                                   rank=0)
        plugin.rlcore_run_end(run_dir=str(tmp_path), summary={}, rank=0)

    run(0, [1, 2, 3, 4])  # cut short after step 4; its last checkpoint was step 2
    run(2, [3, 4, 5])
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (1, 1.0), (2, 2.0), (3, 23.0), (4, 24.0), (5, 25.0)]

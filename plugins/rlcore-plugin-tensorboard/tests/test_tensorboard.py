"""The logger writes the config, the metrics and the summary into readable event files."""

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlcore.plugins import registry
from rlcore.runtime.metrics import MetricsLogger
from rlcore_plugin_tensorboard.writer import TensorBoardLogger


def events(run_dir):
    found = EventAccumulator(str(run_dir / "tensorboard"))
    found.Reload()
    return found


def test_it_writes_scalars_config_and_summary_that_tensorboard_reads(tmp_path):
    logger = TensorBoardLogger(run_dir=str(tmp_path), config={"experiment": "sft"}, start_step=0)
    for step, loss in enumerate([2.0, 1.5, 1.0], start=1):
        logger.log(step, {"loss": loss, "note": "skip me"})
    logger.close({"status": "completed", "steps": 3})
    found = events(tmp_path)
    assert [(e.step, e.value) for e in found.Scalars("loss")] == [(1, 2.0), (2, 1.5), (3, 1.0)]
    assert "sft" in found.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert '"completed"' in found.Tensors("summary")[0].tensor_proto.string_val[0].decode()


def test_it_is_registered_and_the_default_logger(tmp_path, rlcore_plugins):
    assert registry.load("loggers", "tensorboard") is TensorBoardLogger
    log = MetricsLogger(tmp_path, rank=0, total_steps=1, progress=False)  # run.loggers unset
    log.start({})
    log.log(7, {"reward": 0.25})
    log.finish()
    assert [(e.step, e.value) for e in events(tmp_path).Scalars("reward")] == [(7, 0.25)]


def test_other_ranks_and_an_empty_selection_write_nothing(tmp_path, rlcore_plugins):
    for rank, loggers in ((1, None), (0, [])):
        log = MetricsLogger(tmp_path, rank=rank, total_steps=1, progress=False, loggers=loggers)
        log.start({})
        log.log(1, {"loss": 1.0})
        log.finish()
    assert not (tmp_path / "tensorboard").exists()


def test_a_resumed_run_shows_each_step_once(tmp_path):
    """Also when both runs start within one second, as the 9th and 10th writer of a process
    (tensorboard's unpadded file counter would sort the second file first)."""
    from tensorboard.summary.writer import event_file_writer

    while event_file_writer._global_uid.get() < 8:  # the next two writers get 9 and 10
        pass

    def run(start_step, steps):
        logger = TensorBoardLogger(run_dir=str(tmp_path), config={}, start_step=start_step)
        for step in steps:
            logger.log(step, {"loss": float(10 * start_step + step)})
        logger.close({"status": "completed"})

    run(0, [1, 2, 3, 4])  # cut short after step 4; its last checkpoint was step 2
    run(2, [3, 4, 5])
    assert [(e.step, e.value) for e in events(tmp_path).Scalars("loss")] == [
        (1, 1.0), (2, 2.0), (3, 23.0), (4, 24.0), (5, 25.0)]

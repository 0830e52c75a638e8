"""run.loggers: names are checked, a logger that cannot start stops the run before training,
one that fails later is dropped with a warning and the run goes on."""

import types

import pytest

import rlcore
from rlcore.errors import ConfigError, RlcoreError
from rlcore.plugins.records import LoggerRecord
from rlcore.runtime.loggers import selected
from rlcore.runtime.metrics import MetricsLogger

SEEN: list = []


class Recording:
    def __init__(self, run_dir, config, start_step):
        SEEN.append(("start", config, start_step))

    def log(self, step, metrics):
        SEEN.append(("log", step, metrics))

    def close(self, summary):
        SEEN.append(("close", summary["status"]))


class BrokenAtStart:
    def __init__(self, run_dir, config, start_step):
        raise ValueError("no API key")


class BrokenAtLog(Recording):
    def log(self, step, metrics):
        raise OSError("connection reset")


@pytest.fixture
def loggers(rlcore_plugins):
    SEEN.clear()
    plugin = types.SimpleNamespace(rlcore_loggers=rlcore.hookimpl(lambda: [
        LoggerRecord(name, impl=f"{__name__}:{cls}") for name, cls in
        (("recording", "Recording"), ("broken_start", "BrokenAtStart"),
         ("broken_log", "BrokenAtLog"))]))
    rlcore_plugins.register(plugin, name="test-loggers")
    return rlcore_plugins


def run_with(tmp_path, names, steps=2):
    log = MetricsLogger(tmp_path, rank=0, total_steps=steps, progress=False, loggers=names)
    log.start({"experiment": "x"})
    for step in range(1, steps + 1):
        log.log(step, {"loss": 1.0 / step})
    return log.finish()


def test_the_selected_loggers_get_config_metrics_and_summary(tmp_path, loggers):
    run_with(tmp_path, ["recording"])
    assert SEEN == [("start", {"experiment": "x"}, 0), ("log", 1, {"loss": 1.0}),
                    ("log", 2, {"loss": 0.5}), ("close", "completed")]


def test_an_unknown_name_is_a_config_error_with_suggestions(loggers):
    with pytest.raises(ConfigError, match=r"run.loggers: no loggers named 'recordin'\. "
                                          r"Did you mean 'recording'\?"):
        selected(["recordin"])


def test_a_first_party_logger_that_is_not_installed_says_what_to_install(rlcore_plugins,
                                                                         monkeypatch):
    from rlcore import first_party

    rlcore_plugins.reload(env={"RLCORE_PLUGINS_BLOCK": "wandb"})
    monkeypatch.setattr(first_party, "installed", lambda dist: dist != "rlcore-plugin-wandb")
    with pytest.raises(ConfigError, match=r"no loggers named 'wandb'.* Install it: pip install "
                                          r"rlcore-plugin-wandb\.$"):
        selected(["wandb"])


def test_a_logger_that_cannot_start_stops_the_run_before_training(tmp_path, loggers):
    with pytest.raises(RlcoreError, match=r"logger 'broken_start' \(.*\) could not start: "
                                          r"ValueError: no API key\. .*run\.loggers"):
        run_with(tmp_path, ["recording", "broken_start"])
    assert SEEN[-1] == ("close", "failed")  # the one that started is closed


def test_a_logger_failing_later_is_dropped_and_the_run_goes_on(tmp_path, loggers, caplog):
    summary = run_with(tmp_path, ["broken_log", "recording"], steps=3)
    assert summary["status"] == "completed"
    assert [s[1] for s in SEEN if s[0] == "log"] == [1, 2, 3]  # recording's
    assert caplog.text.count("logger 'broken_log': log failed (OSError: connection reset)") == 1

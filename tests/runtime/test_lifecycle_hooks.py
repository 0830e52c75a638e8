"""Lifecycle hooks: each plugin's implementation is isolated and named when it fails."""

import pytest

import rlcore
from rlcore.errors import PluginHookExit
from rlcore.runtime.hooks import call_hook


class Recorder:
    def __init__(self):
        self.steps = []

    @rlcore.hookimpl
    def rlcore_step_end(self, step, metrics, rank):
        self.steps.append(step)


class Raiser:
    @rlcore.hookimpl
    def rlcore_step_end(self, step, metrics, rank):
        raise ValueError("logger is broken")


class Exiter:
    @rlcore.hookimpl
    def rlcore_step_end(self, step, metrics, rank):
        raise SystemExit(4)


def test_a_raising_hook_does_not_stop_the_others_and_is_named(rlcore_plugins, caplog):
    recorder = Recorder()
    rlcore_plugins.register(recorder, name="recorder")
    rlcore_plugins.register(Raiser(), name="broken-logger")  # registered last: pluggy calls it first
    call_hook("rlcore_step_end", step=1, metrics={"loss": 1.0}, rank=0)
    call_hook("rlcore_step_end", step=2, metrics={"loss": 0.5}, rank=0)
    assert recorder.steps == [1, 2]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # said once, not every step
    assert "'broken-logger'" in warnings[0] and "rlcore_step_end raised ValueError: logger is broken" in warnings[0]


def test_sys_exit_in_a_hook_stops_the_run_naming_the_plugin(rlcore_plugins):
    recorder = Recorder()
    rlcore_plugins.register(recorder, name="recorder")
    rlcore_plugins.register(Exiter(), name="quitter")
    with pytest.raises(PluginHookExit, match=r"plugin 'quitter' .*called sys.exit\(4\) in rlcore_step_end"):
        call_hook("rlcore_step_end", step=1, metrics={}, rank=0)

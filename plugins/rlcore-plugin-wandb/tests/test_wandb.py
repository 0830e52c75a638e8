"""The wandb logger against the real package, offline: config, metrics, summary, resume."""

import json
import time

import pytest

pytest.importorskip("wandb")

from wandb_file import read_run  # noqa: E402

from rlcore.plugins import registry  # noqa: E402
from rlcore.runtime.metrics import MetricsLogger  # noqa: E402
from rlcore_plugin_wandb.logger import WandbLogger  # noqa: E402

CONFIG = {"experiment": "sft", "run": {"seed": 1, "loggers": ["wandb"]}}


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """W&B offline, with every file it writes under the test's tmp dir."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path))
    monkeypatch.delenv("WANDB_PROJECT", raising=False)


def a_run(run_dir, steps, start_step=0, status="completed"):
    """Steps ``steps`` through the runtime's metrics logger with run.loggers=[wandb]."""
    log = MetricsLogger(run_dir, rank=0, total_steps=5, start_step=start_step, progress=False,
                        loggers=["wandb"])
    log.start(CONFIG)
    for step in steps:
        log.log(step, {"actor_train/loss": 10.0 * start_step + step, "bad": float("nan")})
    return log.finish(status)


def test_it_is_registered(rlcore_plugins):
    assert registry.load("loggers", "wandb") is WandbLogger


def test_a_run_logs_its_config_every_metric_and_its_summary(tmp_path, rlcore_plugins):
    a_run(tmp_path, [1, 2, 3])
    [run] = settled_runs(tmp_path)
    assert run["config"]["experiment"] == "sft" and run["config"]["run"]["seed"] == 1
    assert [(r["step"], r["actor_train/loss"]) for r in run["history"]] == [(1, 1), (2, 2), (3, 3)]
    assert all("bad" not in r for r in run["history"])  # NaN is not logged
    assert run["summary"]["rlcore/status"] == "completed" and run["summary"]["rlcore/steps"] == 3
    assert run["exit_code"] == 0
    assert json.loads((tmp_path / "loggers" / "wandb.json").read_text())["run_id"] == run["id"]


def settled_runs(run_dir, timeout_s=60.0):
    """The offline runs once W&B's service has written each one's exit record (it writes them
    after ``finish`` returns, later on a loaded machine)."""
    deadline = time.monotonic() + timeout_s
    runs = read_run(run_dir)
    while any(r["exit_code"] is None for r in runs) and time.monotonic() < deadline:
        time.sleep(0.5)
        runs = read_run(run_dir)
    return runs


def test_a_resumed_run_continues_the_same_wandb_run(tmp_path, rlcore_plugins):
    a_run(tmp_path, [1, 2, 3, 4], status="interrupted")  # its last checkpoint was step 2
    a_run(tmp_path, [3, 4, 5], start_step=2)
    first, resumed = settled_runs(tmp_path)
    assert first["exit_code"] == 1 and resumed["exit_code"] == 0
    assert resumed["id"] == first["id"]
    assert [(r["step"], r["actor_train/loss"]) for r in resumed["history"]] == [
        (3, 23), (4, 24), (5, 25)]


def test_a_fresh_start_is_a_new_wandb_run(tmp_path, rlcore_plugins):
    a_run(tmp_path, [1, 2])
    a_run(tmp_path, [1, 2])  # start_step 0: --no-resume, or nothing to resume
    first, second = read_run(tmp_path)
    assert first["id"] != second["id"]

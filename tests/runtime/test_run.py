"""The per-rank entry point end to end in one process: learning, metrics, hooks,
checkpoints (atomic, keep-last-K) and exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from runtime_toy import ToyConfig, ToyExperiment
from safetensors.torch import load_file

import rlcore
from rlcore.launch.launcher import RankFailedError, launch
from rlcore.runtime.checkpoint import CheckpointError, CheckpointManager
from rlcore.runtime.experiment import build_experiment
from rlcore.runtime.loop import run
from rlcore.runtime.metrics import read_metrics
from rlcore.runtime.seeding import rng_state, set_rng_state


class HookRecorder:
    def __init__(self):
        self.events = []

    @rlcore.hookimpl
    def rlcore_run_start(self, run_dir, config, rank):
        self.events.append(("start", rank, config["n_samples"]))

    @rlcore.hookimpl
    def rlcore_step_end(self, step, metrics, rank):
        self.events.append(("step", step, metrics.get("train/loss")))

    @rlcore.hookimpl
    def rlcore_run_end(self, run_dir, summary, rank):
        self.events.append(("end", summary["status"], summary["steps"]))


@pytest.fixture
def hooks():
    from rlcore.plugins.manager import get_manager

    rec = HookRecorder()
    pm = get_manager().pm
    pm.register(rec, name="test-hook-recorder")
    yield rec
    pm.unregister(rec, name="test-hook-recorder")


def losses(run_dir):
    return {r["step"]: r["train/loss"] for r in read_metrics(run_dir)}


def test_run_learns_logs_and_checkpoints(tmp_path, hooks):
    cfg = ToyConfig()
    cfg.run.save_every, cfg.run.keep_last, cfg.run.eval_every = 4, 2, 6
    summary = run("runtime_toy:ToyExperiment", cfg, tmp_path, resume=False)
    assert summary["status"] == "completed" and summary["steps"] == 24  # 3 epochs of 8 batches
    before, *records = read_metrics(tmp_path)
    assert before["step"] == 0 and set(before) == {"step", "time", "eval/mse", "time/eval"}
    assert before["time/eval"] > 0  # eval_at_start, and how long it took
    assert [r["step"] for r in records] == list(range(1, 25))
    first = sum(r["train/loss"] for r in records[:4]) / 4
    last = sum(r["train/loss"] for r in records[-4:]) / 4
    assert last < 0.8 * first
    assert records[0]["train/lr"] == pytest.approx(1.5e-2)  # warmup: half the lr at step 1
    evals = [r["eval/mse"] for r in records if "eval/mse" in r]
    assert [r["step"] for r in records if "eval/mse" in r] == [6, 12, 18, 24]
    assert evals[-1] < evals[0] < before["eval/mse"]
    # Hooks: start, one event per step, end.
    assert hooks.events[0] == ("start", 0, 64)
    assert [e[1] for e in hooks.events if e[0] == "step"] == list(range(25))
    assert hooks.events[-1] == ("end", "completed", 24)
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 24
    # Keep the last two; the weights are safetensors matching the trained student.
    ckpt = CheckpointManager(tmp_path)
    assert [p.name for p in ckpt.complete()] == ["step-00000020", "step-00000024"]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    weights = load_file(str(ckpt.latest() / "student" / "model.safetensors"))
    assert set(weights) == {"net.0.weight", "net.0.bias", "net.3.weight", "net.3.bias"}
    state = json.loads((ckpt.latest() / "trainer_state.json").read_text())
    assert state["step"] == 24 and state["roles"] == ["student"]
    assert (state["data"]["epoch"], state["data"]["batch_in_epoch"]) == (2, 8)
    assert not (ckpt.latest() / "teacher").exists()  # frozen roles are not re-saved
    assert (ckpt.latest() / "student" / "regression.txt").read_text() == "version 24\n"


def test_killed_run_resumes_with_identical_losses(tmp_path, monkeypatch):
    full = ToyConfig()
    full.run.epochs, full.run.save_every = 2, 3
    run(ToyExperiment(full), full, tmp_path / "full", resume=False)
    reference = losses(tmp_path / "full")
    assert len(reference) == 16

    monkeypatch.setenv("RLCORE_TOY_FAIL", "0:11")  # dies after the step-9 checkpoint
    with pytest.raises(ValueError, match="injected failure"):
        run(ToyExperiment(full), full, tmp_path / "cut", resume=False)
    monkeypatch.delenv("RLCORE_TOY_FAIL")
    assert CheckpointManager(tmp_path / "cut").latest().name == "step-00000009"
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["status"] == "failed"

    summary = run(ToyExperiment(full), full, tmp_path / "cut", resume=True)  # auto-resume
    assert summary["steps"] == 16
    resumed = losses(tmp_path / "cut")
    assert sorted(resumed) == list(range(1, 17))  # one record per step, the cut-off ones replaced
    assert resumed == reference  # exact: same optimizer, schedule, RNG and data position


def test_resume_from_an_explicit_checkpoint_and_mismatches(tmp_path):
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last = 1, 2, 0
    run(ToyExperiment(cfg), cfg, tmp_path, resume=False)
    ckpt = CheckpointManager(tmp_path)
    assert len(ckpt.complete()) == 4
    summary = run(ToyExperiment(cfg), cfg, tmp_path / "again",
                  resume=str(ckpt.complete()[1]))  # from step 4
    assert summary["steps"] == 8
    assert losses(tmp_path / "again") == {s: v for s, v in losses(tmp_path).items() if s > 4}
    other = ToyConfig()
    other.run.epochs, other.run.batch_size = 1, 4
    with pytest.raises(CheckpointError, match=r"another config \(run.batch_size: 8 -> 4\)"):
        run(ToyExperiment(other), other, tmp_path / "x", resume=str(ckpt.latest()))
    longer = ToyConfig()
    longer.run.epochs, longer.run.save_every, longer.run.keep_last = 2, 2, 0  # may change
    assert run(ToyExperiment(longer), longer, tmp_path, resume=True)["steps"] == 16


def test_no_resume_sets_earlier_checkpoints_aside(tmp_path):
    long = ToyConfig()
    long.run.epochs = 2
    run(ToyExperiment(long), long, tmp_path, resume=False)
    short = ToyConfig()
    short.run.epochs, short.run.batch_size = 1, 16  # another config: a fresh run is asked for
    assert run(ToyExperiment(short), short, tmp_path, resume=False)["steps"] == 4
    (aside,) = tmp_path.glob("checkpoints-before-*")
    assert CheckpointManager(tmp_path).latest().name == "step-00000004"  # not the old step 16
    assert (aside / "step-00000016" / "COMPLETE").is_file()  # kept, not deleted
    assert run(ToyExperiment(short), short, tmp_path, resume=True)["steps"] == 4


def test_incomplete_checkpoints_are_ignored(tmp_path):
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.max_steps = 1, 2
    run(ToyExperiment(cfg), cfg, tmp_path, resume=False)
    root = tmp_path / "checkpoints"
    (root / "step-00000050").mkdir()  # crashed before its COMPLETE marker
    (root / ".tmp-step-00000060").mkdir(parents=True)
    ckpt = CheckpointManager(tmp_path)
    assert ckpt.latest().name == "step-00000002"
    exp = build_experiment("runtime_toy:ToyExperiment", cfg)
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        ckpt.load(root / "step-00000050", {})
    assert exp.graph().render().startswith("dataset provides: x")


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = json.loads(json.dumps(rng_state()))  # JSON-safe
    a = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_launch_one_process_and_dry_run(tmp_path, capsys):
    cfg = ToyConfig()
    cfg.run.max_steps = 3
    assert launch("runtime_toy:ToyExperiment", cfg, nproc=1, run_dir=tmp_path, dry_run=True) is None
    assert "1. label: teacher.inference" in capsys.readouterr().out
    summary = launch("runtime_toy:ToyExperiment", cfg, nproc=1, run_dir=tmp_path, resume=False)
    assert summary["steps"] == 3 and (tmp_path / "config.yaml").exists()
    assert isinstance(RankFailedError("x", rank=1), rlcore.errors.RlcoreError)


def test_metrics_logger_progress_summary_and_truncation(tmp_path, hooks, capsys):
    from rlcore.runtime.metrics import MetricsLogger

    class Broken:
        @rlcore.hookimpl
        def rlcore_step_end(self, step, metrics, rank):
            raise RuntimeError("logger plugin is down")

    from rlcore.plugins.manager import get_manager

    get_manager().pm.register(Broken(), name="test-broken-logger")
    try:
        log = MetricsLogger(tmp_path, rank=0, total_steps=4, progress=True)
        log.start({"n_samples": 1})
        for step in range(1, 5):
            log.log(step, {"train/loss": 1.0 / step, "time/train": 0.1})  # broken hook: a warning
        summary = log.finish()
    finally:
        get_manager().pm.unregister(name="test-broken-logger")
    out = capsys.readouterr().out
    assert "train/loss" in out and "1.0000" in out and "0.2500" in out  # summary table
    assert "time/train" not in out.split("metric")[-1]  # timings stay out of the table
    assert summary["first"]["train/loss"] == 1.0 and summary["last"]["train/loss"] == 0.25
    # Resuming from step 2 drops the records of steps 3 and 4 written by the cut-short run.
    MetricsLogger(tmp_path, rank=0, total_steps=4, start_step=2, progress=False).start({"n_samples": 1})
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    # Only rank 0 writes.
    other = MetricsLogger(tmp_path / "r1", rank=1, total_steps=1, progress=False)
    other.start({"n_samples": 1})
    other.log(1, {"train/loss": 0.5})
    assert not (tmp_path / "r1" / "metrics.jsonl").exists()

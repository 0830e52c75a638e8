"""The checkpoint layout: HF model dirs hold weights only, engine state beside them, files 0644,
and checkpoints of the earlier layout (``<role>/engine/``) still resume exactly."""

from __future__ import annotations

import json
import os
import shutil

from runtime_toy import ToyConfig, ToyExperiment

from rlcore.runtime.checkpoint import COMPLETE, CheckpointManager, _manifest
from rlcore.runtime.loop import run
from rlcore.runtime.metrics import read_metrics


def losses(run_dir):
    return {r["step"]: r["train/loss"] for r in read_metrics(run_dir)}


def one_epoch(run_dir, resume=False):
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last = 1, 2, 0
    return run(ToyExperiment(cfg), cfg, run_dir, resume=resume)


def test_engine_state_lives_beside_the_model_dir_and_files_are_readable(tmp_path):
    """``student/`` holds no optimizer state; every file gets the mode open() would give."""
    one_epoch(tmp_path)
    latest = CheckpointManager(tmp_path).latest()
    assert not (latest / "student" / "engine").exists()
    assert sorted(p.name for p in (latest / "engine_state" / "student").iterdir()) == [
        "engine.json", "engine.safetensors"]
    manifest = json.loads((latest / COMPLETE).read_text())["files"]
    assert "engine_state/student/engine.safetensors" in manifest
    mask = os.umask(0)
    os.umask(mask)
    modes = {str(p.relative_to(latest)): p.stat().st_mode & 0o777
             for p in latest.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_a_checkpoint_of_the_earlier_layout_resumes_exactly(tmp_path):
    """Engine state moved back to ``student/engine/`` (manifest rewritten): same losses."""
    one_epoch(tmp_path / "ref")
    old = CheckpointManager(tmp_path / "ref").complete()[1]  # step 4
    shutil.move(old / "engine_state" / "student", old / "student" / "engine")
    (old / "engine_state").rmdir()
    (old / COMPLETE).write_text(json.dumps({"step": 4, "time": 0, "files": _manifest(old)}))
    assert CheckpointManager.problem(old) is None
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last = 1, 2, 0
    summary = run(ToyExperiment(cfg), cfg, tmp_path / "again", resume=str(old))
    assert summary["steps"] == 8
    assert losses(tmp_path / "again") == {s: v for s, v in losses(tmp_path / "ref").items() if s > 4}

"""Two ranks under torchrun on CPU/gloo: ZeRO-3 training, a failing rank, exact resume."""

from __future__ import annotations

import time

import pytest
from runtime_toy import ToyConfig
from safetensors.torch import load_file

from rlcore.launch.launcher import RankFailedError, launch
from rlcore.runtime.checkpoint import CheckpointManager
from rlcore.runtime.metrics import read_metrics

pytestmark = pytest.mark.slow

EXP = "runtime_toy:ToyExperiment"
LIMIT_S = 240  # a hung run fails the test instead of blocking CI


def zero3_config(**changes) -> ToyConfig:
    cfg = ToyConfig()
    cfg.student.zero_stage = 3
    cfg.n_samples, cfg.run.batch_size = 128, 16
    cfg.run.epochs, cfg.run.save_every = 2, 4
    cfg.run.collective_timeout_s = 60
    for k, v in changes.items():
        setattr(cfg, k, v)
    return cfg


def test_zero3_two_ranks_fail_report_and_exact_resume(tmp_path, monkeypatch):
    # 1. Uninterrupted: 2 ranks, ZeRO-3, 16 steps.
    summary = launch(EXP, zero3_config(), nproc=2, run_dir=tmp_path / "full", resume=False,
                     timeout_s=LIMIT_S)
    assert summary["status"] == "completed" and summary["steps"] == 16
    ref = {r["step"]: r["train/loss"] for r in read_metrics(tmp_path / "full")}
    assert sum(list(ref.values())[-4:]) < 0.85 * sum(list(ref.values())[:4])
    weights = load_file(str(CheckpointManager(tmp_path / "full").latest() / "student" /
                            "model.safetensors"))
    assert weights["net.0.weight"].shape == (32, 4)  # gathered from the ZeRO-3 shards

    # 2. Rank 1 raises at step 6: reported with its rank and traceback, and nothing hangs.
    t0 = time.monotonic()
    monkeypatch.setenv("RLCORE_TOY_FAIL", "1:6")
    with pytest.raises(RankFailedError) as info:
        launch(EXP, zero3_config(), nproc=2, run_dir=tmp_path / "cut", resume=False,
               timeout_s=LIMIT_S)
    monkeypatch.delenv("RLCORE_TOY_FAIL")
    assert time.monotonic() - t0 < LIMIT_S
    err = info.value
    assert err.rank == 1
    assert "rank 1 failed" in str(err) and "ValueError: injected failure at call 6" in str(err)
    assert "runtime_toy.py" in str(err) and "in train_step" in str(err)  # the traceback
    assert CheckpointManager(tmp_path / "cut").latest().name == "step-00000004"

    # 3. Resume the cut run: the remaining losses equal the uninterrupted run's.
    summary = launch(EXP, zero3_config(), nproc=2, run_dir=tmp_path / "cut", resume=True,
                     timeout_s=LIMIT_S)
    assert summary["steps"] == 16
    resumed = {r["step"]: r["train/loss"] for r in read_metrics(tmp_path / "cut")}
    assert resumed == pytest.approx(ref, rel=1e-6)

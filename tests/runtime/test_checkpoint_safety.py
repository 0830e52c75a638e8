"""Checkpoints that are safe to load: no pickles, checksums, fallback, disk full, strict metrics."""

from __future__ import annotations

import errno
import json
import math
import re
import shutil

import pytest
import torch
from runtime_toy import ToyConfig, ToyExperiment
from test_backends import data, mlp, train

from rlcore.runtime.backends import DeepSpeedBackend
from rlcore.runtime.checkpoint import CheckpointError, CheckpointManager, DiskFullError
from rlcore.runtime.loop import run
from rlcore.runtime.metrics import MetricsLogger, read_metrics
from rlcore.runtime.options import DeepSpeedOptions, OptimizerOptions


def losses(run_dir):
    return {r["step"]: r["train/loss"] for r in read_metrics(run_dir)}


def short_run(run_dir, **run_opts):
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last = 1, 2, 0
    for k, v in run_opts.items():
        setattr(cfg.run, k, v)
    return cfg, run(ToyExperiment(cfg), cfg, run_dir, resume=False)


class Tripwire:
    """Unpickling it creates a file: proof that loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("stage,dtype", [(0, "fp32"), (1, "fp32"), (2, "bf16"), (3, "fp32")])
def test_engine_state_round_trips_without_pickle(tmp_path, stage, dtype):
    """Saved after 3 steps and loaded into a fresh engine, training continues identically."""
    x, y = data()
    opts = DeepSpeedOptions(zero_stage=stage, dtype=dtype, optimizer=OptimizerOptions(lr=1e-2))
    first = DeepSpeedBackend(opts).wrap(mlp(), total_steps=10)
    train(first, 3, x, y)
    first.save_state(tmp_path)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == sorted(
        [".json", ".safetensors"] * (2 if stage else 1))
    expected = train(first, 3, x, y)
    second = DeepSpeedBackend(opts).wrap(mlp(seed=5), total_steps=10)  # other weights
    second.load_state(tmp_path)
    assert second.version == 3
    assert train(second, 3, x, y) == expected


def test_resume_state_is_code_free_and_a_pickle_is_refused(tmp_path):
    short_run(tmp_path)
    latest = CheckpointManager(tmp_path).latest()
    suffixes = {p.suffix for p in latest.rglob("*") if p.is_file()}
    assert suffixes <= {"", ".json", ".safetensors", ".txt"}, suffixes  # "" is COMPLETE
    marker = tmp_path / "code-ran"
    torch.save({"module": Tripwire(marker)}, latest / "engine_state" / "student" / "model_states.pt")
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last = 1, 2, 0
    with pytest.raises(CheckpointError, match=r"model_states\.pt is a pickle, which could run code"):
        run(ToyExperiment(cfg), cfg, tmp_path, resume=str(latest))
    assert not marker.exists()


def _flip(file):
    raw = bytearray(file.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    file.write_bytes(bytes(raw))


DAMAGE = {
    "flipped byte": (lambda ck: _flip(ck / "engine_state" / "student" / "engine.safetensors"),
                     r"engine\.safetensors is damaged: its checksum does not match"),
    "truncated": (lambda ck: (ck / "student" / "model.safetensors").write_bytes(
        (ck / "student" / "model.safetensors").read_bytes()[:100]),
                  r"model\.safetensors is damaged: 100 bytes, the manifest says \d+"),
    "deleted piece": (lambda ck: (ck / "rng" / "rank-00000.json").unlink(),
                      r"rank-00000\.json is missing"),
    "garbage json": (lambda ck: (ck / "trainer_state.json").write_text("{not json"),
                     r"trainer_state\.json is damaged"),
    "garbage manifest": (lambda ck: (ck / "COMPLETE").write_text("\x00garbage"),
                         r"COMPLETE is not a valid checkpoint manifest"),
}


def test_damaged_checkpoints_are_named_and_resume_falls_back(tmp_path, capsys):
    cfg, _ = short_run(tmp_path / "ref")
    ckpt = CheckpointManager(tmp_path / "ref")
    assert [p.name for p in ckpt.complete()][-2:] == ["step-00000006", "step-00000008"]
    assert ckpt.problem(ckpt.latest()) is None
    for kind, (damage, message) in DAMAGE.items():
        copy = tmp_path / kind.replace(" ", "-")
        shutil.copytree(tmp_path / "ref", copy)
        latest = CheckpointManager(copy).latest()
        damage(latest)
        problem = CheckpointManager.problem(latest)
        assert problem is not None and "\n" not in problem, kind
        assert str(latest) in problem and re.search(message, problem), (kind, problem)
        with pytest.raises(CheckpointError, match=message):  # an explicit --resume: refused
            CheckpointManager(copy).verify(latest)
    # Auto-resume skips the damaged newest checkpoint, says so, and continues from step 6.
    capsys.readouterr()
    longer = ToyConfig()
    longer.run.epochs, longer.run.save_every, longer.run.keep_last = 2, 2, 0
    summary = run(ToyExperiment(longer), longer, tmp_path / "flipped-byte", resume=True)
    out = capsys.readouterr().out
    assert "skipping a damaged checkpoint: " in out and "engine.safetensors is damaged" in out
    assert f"falling back to {tmp_path / 'flipped-byte' / 'checkpoints' / 'step-00000006'}" in out
    assert f"resuming from {tmp_path / 'flipped-byte' / 'checkpoints' / 'step-00000006'} " \
           "(step 6 of 16)" in out
    assert summary["steps"] == 16
    assert sorted(losses(tmp_path / "flipped-byte")) == list(range(1, 17))  # each step once


def test_disk_full_removes_the_partial_checkpoint_and_the_next_start_works(tmp_path, monkeypatch,
                                                                            capsys):
    import rlcore.runtime.checkpoint as checkpoint

    real = checkpoint.save_weights
    calls = []

    def full_disk(handle, path, **kw):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: half written, then the disk is full
            path.mkdir(parents=True, exist_ok=True)
            (path / "model.safetensors").write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path / "model.safetensors"))
        real(handle, path, **kw)

    monkeypatch.setattr(checkpoint, "save_weights", full_disk)
    with pytest.raises(DiskFullError) as info:
        short_run(tmp_path)
    message = str(info.value)
    assert message.startswith("no space left writing ") and "\n" not in message
    assert ".tmp-step-00000004/student/model.safetensors" in message
    root = tmp_path / "checkpoints"
    assert not list(root.glob(".tmp-*"))  # the partial checkpoint is gone
    ckpt = CheckpointManager(tmp_path)
    assert [p.name for p in ckpt.complete()] == ["step-00000002"]
    assert ckpt.problem(ckpt.latest()) is None  # the last good one is intact
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"

    # Space is freed; a killed run's leftover partial checkpoint is cleaned at start.
    monkeypatch.setattr(checkpoint, "save_weights", real)
    (root / ".tmp-step-00000003" / "student").mkdir(parents=True)
    cfg = ToyConfig()
    cfg.run.epochs, cfg.run.save_every, cfg.run.keep_last = 1, 2, 0
    capsys.readouterr()
    assert run(ToyExperiment(cfg), cfg, tmp_path, resume=True)["steps"] == 8
    assert f"removed {root / '.tmp-step-00000003'}, a partial checkpoint" in capsys.readouterr().out
    assert not list(root.glob(".tmp-*"))
    assert ckpt.latest().name == "step-00000008"


def test_safetensors_disk_full_is_one_line_too(tmp_path, monkeypatch):
    """safetensors wraps the OS error in its own exception; it is still named as disk full."""
    def full(tensors, filename, metadata=None):
        raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                           'message: "No space left on device" })')

    monkeypatch.setattr("safetensors.torch.save_file", full)  # imported at call time
    with pytest.raises(DiskFullError, match=r"^no space left writing \S*/\.tmp-step-00000002/student"):
        short_run(tmp_path)
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_metrics_jsonl_is_strict_json(tmp_path):
    log = MetricsLogger(tmp_path, rank=0, total_steps=2, progress=False)
    log.start({})
    log.log(1, {"loss": math.nan, "grad_norm": math.inf, "reward": -math.inf, "ok": 1.5})
    log.finish("failed")

    def refuse(token):
        raise ValueError(f"bare {token} is not JSON")

    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line, parse_constant=refuse)
        assert (record["loss"], record["grad_norm"], record["reward"]) == (
            "NaN", "Infinity", "-Infinity")
    json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
    (back,) = read_metrics(tmp_path)
    assert math.isnan(back["loss"]) and back["grad_norm"] == math.inf and back["ok"] == 1.5

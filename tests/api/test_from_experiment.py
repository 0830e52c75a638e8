"""``Engine.from_experiment``: the same experiments and config resolution as ``rlcore train``."""

from __future__ import annotations

import pytest
from api_experiment import LineDataset, RegressionConfig

from rlcore.api import Engine, Evaluator
from rlcore.errors import ConfigError, RlcoreError
from rlcore.runtime.metrics import read_metrics

EXP = "api_experiment:Regression"


def test_overrides_resolve_like_the_cli_and_the_run_learns(tmp_path):
    engine = Engine.from_experiment(EXP, overrides=["run.max_steps=6", "n_samples=32", "run.epochs=2"],
                                    run_dir=tmp_path)
    assert engine.config.run.max_steps == 6 and engine.config.n_samples == 32
    assert [m.name for m in engine.graph().order] == ["fit"]
    summary = engine.learn(resume=False)
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert summary["last"]["fit/loss"] < summary["first"]["fit/loss"]
    assert (tmp_path / "checkpoints" / "step-00000006" / "COMPLETE").is_file()


def test_config_objects_datasets_and_errors(tmp_path):
    base = RegressionConfig(n_samples=16)
    engine = Engine.from_experiment(EXP, config=base, overrides=["run.max_steps=3"],
                                    run_dir=tmp_path)
    assert engine.config.n_samples == 16 and engine.config.run.max_steps == 3
    assert base.run.max_steps == 50  # the caller's object is not changed
    engine.set_dataset(LineDataset(8))  # a dataset object replaces the experiment's
    summary = engine.learn(resume=False)
    assert summary["steps"] == 1  # 8 samples in batches of 8, one epoch
    assert [r["fit/samples"] for r in read_metrics(tmp_path)] == [8.0]

    with pytest.raises(ConfigError, match="max_stpes"):
        Engine.from_experiment(EXP, overrides=["run.max_stpes=3"])
    with pytest.raises(ConfigError, match="expects a RegressionConfig"):
        Engine.from_experiment(EXP, config=object())
    with pytest.raises(RlcoreError, match="evaluates itself"):
        engine.set_evaluator(Evaluator(eval_fn=lambda b: {}), every=1)


def test_registered_sft_runs_a_few_steps(tmp_path):
    pytest.importorskip(
        "rlcore_plugin_algorithms.experiments",
        reason="the sft/rm/dpo experiments (rlcore-plugin-algorithms) are not installed yet",
    )
    engine = Engine.from_experiment(
        "sft", run_dir=tmp_path,
        overrides=["run.max_steps=3", "run.batch_size=8", "run.eval_every=0",
                   "run.progress=false"])
    engine.set_dataset([{"prompt": f"{a}+{a}=", "answer": str(2 * a)} for a in range(24)])
    summary = engine.learn(resume=False)
    assert summary["status"] == "completed" and summary["steps"] == 3
    assert engine.config.dataset.path == str((tmp_path / "dataset.jsonl").resolve())

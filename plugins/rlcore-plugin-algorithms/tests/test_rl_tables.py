"""The estimator and policy-loss tables: every built-in entry passes the conformance suites, and
a plugin's entries do too and train through ``--set``."""

from __future__ import annotations

import sys

import pytest
import table_plugin
from test_experiments import read_metrics
from typer.testing import CliRunner

from rlcore.cli.app import app
from rlcore.cli.train_cmd import resolve_experiment
from rlcore.launch.launcher import launch
from rlcore.testing.rl_tables import EstimatorConformance, PolicyLossConformance


@pytest.fixture(autouse=True)
def _table_plugin(rlcore_plugins):
    rlcore_plugins.register(sys.modules[table_plugin.__name__], name="table-plugin")


class TestGAE(EstimatorConformance):
    estimator = "gae"


class TestREINFORCEpp(EstimatorConformance):
    estimator = "reinforce_pp"


class TestGRPO(EstimatorConformance):
    estimator = "grpo"


class TestRLOO(EstimatorConformance):
    estimator = "rloo"


class TestReMax(EstimatorConformance):
    estimator = "remax"


class TestMedianBaseline(EstimatorConformance):
    estimator = "median_baseline"


class TestPPOClip(PolicyLossConformance):
    loss = "ppo"


class TestPPODualClip(PolicyLossConformance):
    loss = "ppo"
    options = {"dual_clip": 3.0, "clip_high": 0.28}


class TestCISPO(PolicyLossConformance):
    loss = "cispo"


def test_rlcore_list_shows_both_tables():
    out = CliRunner().invoke(app, ["list", "estimators"], env={"COLUMNS": "200"}).output
    for name in ("gae", "grpo", "rloo", "reinforce_pp", "remax", "median_baseline"):
        assert name in out, out
    out = CliRunner().invoke(app, ["list", "policy_losses"], env={"COLUMNS": "200"}).output
    assert "ppo" in out and "cispo" in out, out
    out = CliRunner().invoke(app, ["info", "estimators", "median_baseline"]).output
    assert "grouped: True" in out and "min_samples: 2" in out and "needs_critic: False" in out


@pytest.mark.slow
def test_a_plugin_estimator_and_loss_train_through_set(tmp_path):
    sets = ["run.progress=false", "run.eval_every=0", "run.batch_size=8", "run.max_steps=2",
            "warm_start.sft_steps=0", "adv.estimator=median_baseline", "policy.loss=cispo"]
    record, cfg = resolve_experiment("grpo", None, sets)
    assert (cfg.adv.estimator, cfg.policy.loss) == ("median_baseline", "cispo")
    before = dict(table_plugin.CALLS)
    launch(record.name, cfg, nproc=1, run_dir=tmp_path / "run")
    rows = [r for r in read_metrics(tmp_path / "run") if r["step"] > 0]
    assert len(rows) == 2 and all(r["actor_train/updates"] == 2 for r in rows)
    # once per step, and once per minibatch (2) per step
    assert table_plugin.CALLS["median_baseline"] - before["median_baseline"] == 2
    assert table_plugin.CALLS["cispo"] - before["cispo"] == 4
    assert all(r["actor_train/clip_frac"] == 0.0 for r in rows)  # cispo reports no clipping

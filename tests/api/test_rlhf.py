"""``RLHFEngine``: ChatLearn's six-module PPO on rlcore's runtime, and the documented example."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest
import torch

import rlcore
from rlcore.api import Engine, Module, RLHFEngine
from rlcore.data import embedded
from rlcore.errors import ConfigError
from rlcore.runtime.metrics import read_metrics

pytest.importorskip("rlcore_plugin_algorithms.sampling", reason="the example uses the PPO helpers")
ex = importlib.import_module("rlhf_example")

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"
EXAMPLE = Path(ex.__file__)


def documented_example() -> str:
    """The python block after "Save it as `train_rlhf.py`." in "PPO with RLHFEngine"."""
    text = DOC.read_text()
    section = text[text.index("\n## PPO with RLHFEngine\n"):]
    after = section.index("`train_rlhf.py`.")
    start = section.index("```python\n", after) + len("```python\n")
    return section[start : section.index("```\n", start)]


def test_the_doc_shows_exactly_the_tested_example():
    assert documented_example() == EXAMPLE.read_text(), (
        f"the example in {DOC.name} and {EXAMPLE.name} differ; keep them the same text")


def engine(run_dir, steps, **kw):
    e = ex.rlhf_engine(run_dir=run_dir, max_steps=steps, batch_size=4, progress=False, seed=3,
                       **kw)
    return e.set_dataset(embedded.prompt_rows(32))


def weights(module):
    return module.handle.model.full_state_dict()


def test_ppo_runs_syncs_the_frozen_copies_and_resumes(tmp_path):
    rlcore.init(seed=3, log_level="WARNING")
    full = engine(tmp_path / "full", 4)
    assert full.experiment().weight_syncs() == {"ppo_policy": "policy", "ppo_value": "value"}
    summary = full.learn(resume=False)
    assert summary["status"] == "completed" and summary["steps"] == 4
    records = [r for r in read_metrics(tmp_path / "full") if r["step"] > 0]
    for key in ("ppo_policy.train_step/loss", "ppo_value.train_step/loss"):
        assert [math.isfinite(r[key]) for r in records] == [True] * 4, key
    # The frozen copies hold the trainers' weights and versions after the last step.
    m = full.modules
    for frozen, trained in (("policy", "ppo_policy"), ("value", "ppo_value")):
        got, want = weights(m[frozen]), weights(m[trained])
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), frozen
        assert m[frozen].version == m[trained].version == 4
    assert not torch.equal(weights(m["reference"])["lm_head.weight"],
                           weights(m["policy"])["lm_head.weight"])

    cut = engine(tmp_path / "cut", 2)
    cut.learn(resume=False)
    resumed = engine(tmp_path / "cut", 4)
    summary = resumed.learn()  # continues from the step-2 checkpoint
    assert summary["steps"] == 4
    records = [r for r in read_metrics(tmp_path / "cut") if r["step"] > 0]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert resumed.modules["policy"].version == 4
    for key in ("ppo_value.train_step/loss", "ppo_policy.train_step/reward"):
        assert [r[key] for r in records] == pytest.approx(
            [r[key] for r in read_metrics(tmp_path / "full") if r["step"] > 0], abs=1e-5), key


class Gen(Module):
    input_keys = ("prompts",)
    output_keys = ("ids",)

    def setup(self):
        self.model = torch.nn.Linear(1, 1)

    def forward_step(self, data):
        return {}


class Score(Module):
    input_keys = ("ids",)
    output_keys = ("score",)

    def forward_step(self, data):
        return {}


class Value(Score):
    output_keys = ("values",)

    def setup(self):
        self.model = torch.nn.Linear(1, 1)


class Train(Module):
    train_keys = ("ids", "score", "ref", "values")

    def train_step(self, data):
        return {}


class TrainingPolicy(Gen):
    def train_step(self, data):
        return {}


def six(**replace):
    mods = {"policy": Gen("policy"), "reference": Score("reference", output_keys=["ref"]),
            "reward": Score("reward"), "value": Value("value"),
            "ppo_policy": Train("ppo_policy"), "ppo_value": Train("ppo_value")}
    mods.update(replace)
    return list(mods.values())


def test_roles_are_checked_with_errors_that_name_the_role():
    e = RLHFEngine(*six(), run_dir="unused")
    assert [m.name for m in e.graph().order][-2:] == ["ppo_policy.train_step",
                                                       "ppo_value.train_step"]
    assert e.config.sync == {"ppo_policy": "policy", "ppo_value": "value"}
    with pytest.raises(ConfigError, match="policy .* defines train_step, but the policy role is"):
        RLHFEngine(*six(policy=TrainingPolicy("policy")))
    with pytest.raises(ConfigError, match="ppo_value .* defines no train_step"):
        RLHFEngine(*six(ppo_value=Score("ppo_value")))
    with pytest.raises(ConfigError, match="reference .* has forward_type 'generate'"):
        RLHFEngine(*six(reference=Score("reference", forward_type="generate")))
    with pytest.raises(ConfigError, match="reward .* defines no forward_step"):
        RLHFEngine(*six(reward=Module("reward")))
    with pytest.raises(ConfigError, match="value .* has no model"):
        RLHFEngine(*six(value=Score("value")))  # no setup: fine for a reward, not for value
    with pytest.raises(ConfigError, match=r"RLHFEngine\(ppo_policy=...\): expected"):
        RLHFEngine(*six(ppo_policy="ppo_policy"))
    with pytest.raises(ConfigError, match="fixes \\['sync'\\]"):
        RLHFEngine(*six(), sync={})


def test_engine_sync_option_is_checked():
    g, s, t = Gen("g"), Score("s"), Train("t")
    assert Engine(g, s, t, sync={"t": "g"}).config.sync == {"t": "g"}
    with pytest.raises(ConfigError, match="'x' is not a module"):
        Engine(g, s, t, sync={"t": "x"})
    with pytest.raises(ConfigError, match="'s' defines no train_step"):
        Engine(g, s, t, sync={"s": "g"})
    with pytest.raises(ConfigError, match="'t' defines train_step; the module whose weights"):
        Engine(g, s, t, Train("u"), sync={"u": "t"})
    with pytest.raises(ConfigError, match="'g' follows several"):
        Engine(g, s, t, Train("u"), sync={"t": "g", "u": "g"})


def test_the_policy_on_a_rollout_worker_gives_the_local_numbers(tmp_path):
    """RLHFEngine(rollout_procs=1): ChatLearn's inference policy on its own process."""
    rlcore.init(seed=3, log_level="WARNING")
    runs = {}
    for procs in (0, 1):
        e = engine(tmp_path / str(procs), 2, rollout_procs=procs)
        assert e.learn(resume=False)["status"] == "completed"
        runs[procs] = [r for r in read_metrics(tmp_path / str(procs)) if r["step"] > 0]
    assert (tmp_path / "1" / "logs" / "rollout-worker-1.log").exists()
    for local, worker in zip(runs[0], runs[1], strict=True):
        for key in ("ppo_policy.train_step/loss", "ppo_policy.train_step/reward",
                    "ppo_value.train_step/loss"):
            assert worker[key] == pytest.approx(local[key], abs=1e-6), key
    with pytest.raises(ConfigError, match="rollout_procs: expected an integer >= 0"):
        engine(tmp_path / "bad", 1, rollout_procs=-1)

"""Value normalisation through the real run loop: the critic's inference de-normalises with the
statistics its train step updates (they were two objects, and inference never saw an update)."""

from __future__ import annotations

import pytest

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.runtime.experiment import build_experiment
from rlcore.runtime.loop import Run
from rlcore_plugin_algorithms.rl_interfaces import CriticInterface

SETS = ["run.progress=false", "run.eval_every=0", "run.batch_size=8", "run.max_steps=3",
        "warm_start.sft_steps=0", "critic.norm=true", "critic.norm_type=ma"]


@pytest.mark.slow
def test_critic_inference_denormalises_with_the_moments_training_updates(tmp_path, monkeypatch):
    seen: list[tuple[str, int, float]] = []
    infer, train = CriticInterface.inference, CriticInterface.train_step

    def inference(self, handle, data):
        seen.append(("inference", self.moments.count, self.moments.mean))
        return infer(self, handle, data)

    def train_step(self, handle, data):
        out = train(self, handle, data)
        seen.append(("train", self.moments.count, self.moments.mean))
        return out

    monkeypatch.setattr(CriticInterface, "inference", inference)
    monkeypatch.setattr(CriticInterface, "train_step", train_step)
    _, cfg = resolve_experiment("ppo", None, SETS)
    run = Run(build_experiment("ppo", cfg), tmp_path / "run")
    assert run.interfaces["critic_inf"] is run.interfaces["critic_train"]
    run.train(resume=False)
    assert [kind for kind, *_ in seen] == ["inference", "train"] * 3
    # Step t's values are de-normalised with the statistics of the returns of steps < t.
    assert seen[0][1] == 0
    for step in (1, 2):
        assert seen[2 * step][1:] == seen[2 * step - 1][1:] and seen[2 * step][1] > 0
    # The checkpoint holds the shared state once, under the first MFC that uses it.
    state = run.ckpt.trainer_state(run.ckpt.latest())["interfaces"]
    assert "critic_inf" in state and "critic_train" not in state
    assert state["critic_inf"]["moments"]["count"] == seen[-1][1]

"""RAFT learns the embedded addition task, and it is the reward-ranked selection that teaches.

One SFT warm start (the default: 400 steps, hidden 128), then two RAFT runs from it with the
same seed: one scored by ``exact_match``, and a control scored by ``format_penalty``, which
gives every non-empty answer 0, so its "best" response is a random one. Both are measured
by greedy exact-match accuracy on held-out prompts (the embedded eval split) at step 0 and
at the end.
"""

from __future__ import annotations

import shutil

import pytest

from rlcore.runtime.metrics import read_metrics
from rlcore.testing.experiments import ExperimentConformance
from rlcore_plugin_algorithms.rl_experiments import WARM_START_DIR

STEPS = 40
RUN = ["run.progress=false", "run.save_every=0", "run.batch_size=16", "gen.n_samples=8",
       f"run.max_steps={STEPS}", f"run.eval_every={STEPS}", "eval.size=128"]


class Raft(ExperimentConformance):
    """Only its config building; the conformance tests run in test_raft.py."""

    experiment = "raft"
    sets = RUN


def raft_run(run_dir, *sets, warm_from=None):
    """Train RAFT in this process; held-out accuracy by step, and the sampled reward per step."""
    from rlcore.runtime.loop import run

    if warm_from is not None:  # the same warm start: its config does not include the reward
        shutil.copytree(warm_from / WARM_START_DIR, run_dir / WARM_START_DIR)
    exp = Raft().build(*sets)
    run(exp, exp.config, run_dir, resume=False)
    rows = read_metrics(run_dir)
    accuracy = {r["step"]: r["eval/accuracy"] for r in rows if "eval/accuracy" in r}
    reward = [r["reward/mean"] for r in rows if r["step"] > 0]
    assert len(reward) == STEPS and sorted(accuracy) == [0, STEPS]
    return accuracy, reward


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@pytest.mark.slow  # ~55 s of CPU time: the warm start and two 40-step runs
def test_raft_raises_held_out_accuracy_and_random_selection_does_not(tmp_path):
    ranked, reward = raft_run(tmp_path / "raft", "raft.min_reward=1.0")
    control, _ = raft_run(tmp_path / "control", "reward.functions=[format_penalty]",
                          "eval.metric=exact_match",  # eval would use the run's reward
                          warm_from=tmp_path / "raft")
    before = ranked[0]
    print(f"held-out accuracy: before {before:.3f}, after {STEPS} RAFT steps "
          f"{ranked[STEPS]:.3f}, after {STEPS} steps of random selection {control[STEPS]:.3f}; "
          f"sampled reward: first 10 steps {mean(reward[:10]):.3f}, last 10 {mean(reward[-10:]):.3f}")
    assert control[0] == before  # the same model before either run
    assert ranked[STEPS] > before + 0.08, (before, ranked)
    assert ranked[STEPS] > control[STEPS] + 0.1, (ranked, control)
    assert mean(reward[-10:]) > mean(reward[:10]) + 0.03, reward

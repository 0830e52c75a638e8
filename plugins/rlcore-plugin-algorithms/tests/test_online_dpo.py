"""Online DPO: pair selection and the tie-weighted DPO loss on fixed tensors, and a short run
through the CLI from the session's warm start."""

import math
import shutil
import subprocess

import pytest
import torch
from test_experiments import RLCORE, read_metrics, series

from rlcore.sdk import INPUT_IDS, PROMPT_MASK, REWARDS, PackedBatch
from rlcore_plugin_algorithms.interfaces import PAIR_WEIGHT, DPOInterface
from rlcore_plugin_algorithms.online_dpo import (
    PAIR_IDS,
    PAIR_MASK,
    PreferencePairsInterface,
    best_and_worst,
)
from rlcore_plugin_algorithms.rl_experiments import WARM_START_DIR


def test_best_and_worst_take_the_first_extremes_and_skip_ties():
    assert best_and_worst([0.0, 1.0, 1.0, -2.0, -2.0]) == (1, 3)
    assert best_and_worst([0.5, 0.5, 0.5]) is None
    assert best_and_worst([1.0, 0.0]) == (0, 1)


def test_pairs_hold_best_and_worst_responses_and_count_ties():
    # prompt a: 3 responses rewarded 0, 1, 0 -> chosen = #1, rejected = #0; prompt b: a tie
    seqs = [[5, 6, 7], [5, 6, 8, 9], [5, 6, 3], [4, 2], [4, 2, 2], [4, 1]]
    prompt = [[1, 1, 0], [1, 1, 0, 0], [1, 1, 0], [1, 0], [1, 0, 0], [1, 0]]
    lens = [[3, 4, 3], [2, 3, 2]]
    batch = PackedBatch(["a", "b"], {
        INPUT_IDS: torch.tensor([t for s in seqs for t in s]),
        PROMPT_MASK: torch.tensor([t for s in prompt for t in s], dtype=torch.bool),
        REWARDS: torch.tensor([0.0, 1.0, 0.0, 0.3, 0.3, 0.3])},
        {INPUT_IDS: lens, PROMPT_MASK: lens, REWARDS: [[1, 1, 1], [1, 1, 1]]})
    out, stats = PreferencePairsInterface().inference(None, batch)
    assert [s.tolist() for s in out.sequences(PAIR_IDS, 0)] == [seqs[1], seqs[0]]
    assert [s.tolist() for s in out.sequences(PAIR_MASK, 0)] == [[False, False, True, True],
                                                                  [False, False, True]]
    assert out.data[PAIR_WEIGHT].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert stats["/online_dpo/ties_frac"] == 0.5
    assert stats["/online_dpo/chosen_reward"] == 1.0
    assert stats["/online_dpo/rejected_reward"] == 0.0
    assert stats["/reward/mean"] == pytest.approx(sum([0, 1, 0, 0.9]) / 6)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_tied_pairs_weigh_nothing_in_the_dpo_loss(loss_type):
    beta = 0.2
    policy = torch.tensor([-3.0, -5.0, -1.0, -1.5, -4.0, -2.0])  # [chosen, rejected] x 3
    ref = [-3.5, -4.0, -1.2, -1.0, -3.0, -3.0]
    weight = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # the second pair is a tie
    batch = PackedBatch(["a", "b", "c"], {"ref_logps": torch.tensor(ref),
                                          PAIR_WEIGHT: torch.tensor(weight)},
                        {"ref_logps": [[1, 1]] * 3, PAIR_WEIGHT: [[1, 1]] * 3})
    loss, metrics = DPOInterface(beta=beta, loss_type=loss_type)._dpo(policy, batch)

    def reference(pc, pr, rc, rr):  # Rafailov et al. 2023; Azar et al. 2023
        h = (pc - pr) - (rc - rr)
        return math.log1p(math.exp(-beta * h)) if loss_type == "sigmoid" else (h - 1 / (2 * beta)) ** 2

    p = policy.tolist()
    expected = (reference(p[0], p[1], ref[0], ref[1]) + reference(p[4], p[5], ref[4], ref[5])) / 2
    assert abs(loss.item() - expected) < 1e-6
    assert metrics["rewards/accuracy"] == 0.5  # over the two real pairs only


def test_short_run_through_the_cli(tmp_path, warm_start, cli_env):
    shutil.copytree(warm_start, tmp_path / WARM_START_DIR)
    sets = ["run.progress=false", "run.batch_size=16", "run.max_steps=3", "run.eval_every=3",
            "eval.size=16", "dpo.loss_type=ipo"]
    out = subprocess.run([RLCORE, "train", "online_dpo", "--run-dir", str(tmp_path),
                          *[a for s in sets for a in ("--set", s)]],
                         capture_output=True, text=True, env=cli_env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "warm start:" not in out.stdout  # the session's warm start was reused
    rows = [r for r in read_metrics(tmp_path) if r["step"] > 0]
    ties = series(rows, "online_dpo/ties_frac")
    assert len(ties) == 3 and all(0.0 <= t <= 1.0 for t in ties), rows
    assert len(series(rows, "actor_train/loss")) == 3
    assert [r["step"] for r in read_metrics(tmp_path) if "eval/accuracy" in r] == [0, 3]
    assert series(rows, "online_dpo/skipped") == [0.0, 0.0, 0.0]  # pairs every step


def test_a_step_where_every_prompt_ties_trains_nothing(tmp_path):
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.launch.launcher import launch

    # a random actor never answers right: every response scores 0, every prompt ties
    record, cfg = resolve_experiment("online_dpo", None, [
        "run.progress=false", "warm_start.sft_steps=0", "run.batch_size=4", "run.max_steps=2",
        "run.eval_every=0", "gen.n_samples=2"])
    launch(record.name, cfg, nproc=1, run_dir=tmp_path, resume=False)
    rows = [r for r in read_metrics(tmp_path) if r["step"] > 0]
    assert series(rows, "online_dpo/ties_frac") == [1.0, 1.0]
    assert series(rows, "online_dpo/skipped") == [1.0, 1.0]
    assert not series(rows, "actor_train/loss") and not series(rows, "time/ref_inference")


@pytest.mark.parametrize(("sets", "message"), [
    (["dpo.loss_type=kto"], "dpo.loss_type=kto: online_dpo trains on the best and worst"),
    (["gen.n_samples=1"], "gen.n_samples=1: online_dpo pairs the best and the worst"),
])
def test_settings_that_make_no_pair_fail_when_resolved(sets, message):
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.sdk import ConfigError

    with pytest.raises(ConfigError, match=message):
        resolve_experiment("online_dpo", None, sets)


@pytest.mark.slow
def test_online_dpo_raises_the_reward(tmp_path, warm_start):
    from statistics import mean

    from rl_runs import train_rl

    rows = train_rl("online_dpo", tmp_path, warm_start, "run.max_steps=60")
    reward = [r["reward/mean"] for r in rows]
    assert len(reward) == 60 and mean(reward[-15:]) > mean(reward[:15]) + 0.03, reward

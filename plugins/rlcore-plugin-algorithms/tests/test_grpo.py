"""grpo and remax end to end: graphs, estimators, DAPO/GSPO/Dr. GRPO options, learning."""

from __future__ import annotations

import subprocess

import pytest
from rl_runs import train_rl
from test_experiments import RLCORE, mean, series

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.errors import ConfigError, RlcoreError
from rlcore.runtime.experiment import build_experiment


def test_grpo_and_remax_are_listed_and_remax_draws_its_greedy_baseline(cli_env):
    listed = subprocess.run([RLCORE, "list", "experiments"], capture_output=True, text=True,
                            env=cli_env, check=True).stdout
    assert "grpo" in listed and "remax" in listed
    out = subprocess.run([RLCORE, "show", "remax", "--format", "mermaid"], capture_output=True,
                         text=True, env=cli_env, check=True).stdout
    for name in ("actor_gen", "rew_inf", "actor_greedy", "rew_greedy", "actor_train"):
        assert f'n_{name}["{name}' in out
    assert "critic" not in out


def roles_of(name, *sets):
    _, cfg = resolve_experiment(name, None, list(sets))
    return set(build_experiment(name, cfg).graph().roles)


def test_critic_free_graphs():
    assert roles_of("grpo") == {"actor", "reward", "adv"}  # no critic, no reference at kl_ctl=0
    assert roles_of("grpo", "kl.coef=0.04") == {"actor", "reward", "ref", "adv"}
    assert roles_of("ppo", "adv.estimator=rloo") == {"actor", "reward", "ref", "adv"}
    assert roles_of("ppo") == {"actor", "critic", "reward", "ref", "adv"}


def test_any_preset_takes_any_estimator():
    """The presets are one experiment: the estimator's record adds the critic or the baseline."""
    assert roles_of("grpo", "adv.estimator=gae") == {"actor", "critic", "reward", "adv"}
    _, cfg = resolve_experiment("ppo", None, ["adv.estimator=remax"])
    names = {m.name for m in build_experiment("ppo", cfg).graph().mfcs}
    assert {"actor_greedy", "rew_greedy"} <= names and "critic_train" not in names


@pytest.mark.parametrize("name, sets, message", [
    ("grpo", ["gen.n_samples=1"], "gen.n_samples must be >= 2"),
    ("grpo", ["adv.estimator=grop"], "no estimators named 'grop'. Did you mean 'grpo'"),
    ("grpo", ["policy.loss=ppo2"], "no policy_losses named 'ppo2'"),
    ("remax", ["remax.value_norm_beta=0.9"], "critic.norm_beta is set, but adv.estimator=remax "
                                             "uses no critic"),
    ("ppo", ["run.batch_size=1"], "cannot make policy.minibatches=2 minibatches"),
])
def test_settings_that_cannot_work_fail_when_the_config_is_resolved(name, sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve_experiment(name, None, sets)


VARIANTS = {
    "dapo": ["policy.eps_clip_low=0.2", "policy.eps_clip_high=0.28", "policy.loss_agg=token-mean",
             "adv.overlong_buffer=2", "dynamic_sampling.enabled=true"],
    "gspo": ["policy.ratio_level=sequence", "policy.eps_clip_low=3e-4", "policy.eps_clip_high=4e-4"],
    "dr_grpo": ["adv.std_norm=false", "policy.loss_agg=seq-mean-token-sum-norm"],
    "rloo": ["adv.estimator=rloo", "kl.coef=0.02"],
    "reinforce_pp": ["adv.estimator=reinforce_pp", "kl.coef=0.02",
                     "kl.in_reward=true", "kl.estimator=k1"],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains(tmp_path, warm_start, variant):
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=3", *VARIANTS[variant])
    assert len(rows) == 3 and all(r["actor_train/updates"] >= 1 for r in rows)
    assert max(series(rows, "gen/logprob_drift")) <= 1e-4
    if variant == "dapo":
        assert all(r["sampling/kept_frac"] <= 1 for r in rows)


def test_dynamic_sampling_stops_when_every_group_is_uniform(tmp_path, warm_start):
    # format_penalty gives every non-empty answer 0: no group ever has a reward spread.
    with pytest.raises(RlcoreError, match="after 2 extra batches 0 of 16 samples"):
        train_rl("grpo", tmp_path, warm_start, "run.max_steps=2", "dynamic_sampling.enabled=true",
                 "dynamic_sampling.max_refills=2", "reward.functions=[format_penalty]")


def test_grpo_raises_the_reward(tmp_path, warm_start):
    rows = train_rl("grpo", tmp_path, warm_start, "run.max_steps=60")
    reward = series(rows, "reward/mean")
    assert len(reward) == 60 and mean(reward[-15:]) > mean(reward[:15]) + 0.05, reward


def test_remax_raises_the_reward(tmp_path, warm_start):
    # ReMax's greedy baseline cancels much of the early signal: the default 32 prompts a step.
    rows = train_rl("remax", tmp_path, warm_start, "run.max_steps=80", "run.batch_size=32")
    reward = series(rows, "reward/mean")
    assert len(reward) == 80 and mean(reward[-20:]) > mean(reward[:20]) + 0.03, reward


def headline_of(name, *sets):
    _, cfg = resolve_experiment(name, None, list(sets))
    return build_experiment(name, cfg).headline_metrics()


def test_headline_metrics_name_only_roles_that_exist():
    assert headline_of("grpo") == ["reward/mean", "eval/accuracy"]  # no reference model
    assert headline_of("grpo", "kl.coef=0.04") == ["reward/mean", "eval/accuracy", "kl/ref"]
    assert headline_of("ppo") == ["reward/mean", "eval/accuracy", "kl/ref"]
    assert headline_of("sft") == ["actor_train/loss", "eval/accuracy"]
    assert headline_of("dpo")[:2] == ["actor_train/loss", "actor_train/rewards/accuracy"]
    assert headline_of("rm")[:2] == ["rm_train/loss", "rm_train/accuracy"]


def test_grpo_without_a_reference_logs_no_kl(tmp_path):
    from rlcore.runtime.loop import run

    _, cfg = resolve_experiment("grpo", None, [
        "warm_start.sft_steps=0", "run.max_steps=1", "run.batch_size=4", "run.progress=false",
        "run.eval_every=0"])
    summary = run("grpo", cfg, tmp_path, resume=False)
    assert not any(k.startswith("kl/") for k in summary["last"]), sorted(summary["last"])
    assert summary["headline"] == ["reward/mean"]  # eval/accuracy: never evaluated
    assert "actor_train/grad_norm" in summary["last"]  # ZeRO stage 0

"""Off-policy correction (``rollout.correction``): the weights and losses against plain per-token
loops, the policy trainer on a tiny model, the config's refusals, and short GRPO runs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from rl_runs import train_rl
from test_rl_interfaces import rollout_for_training, tiny, trainable

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.errors import ConfigError
from rlcore.runtime.experiment import build_experiment
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.rl_config import (
    GenerationOptions,
    KLOptions,
    PolicyOptions,
    RolloutOptions,
)
from rlcore_plugin_algorithms.rl_interfaces import PolicyInterface
from rlcore_plugin_algorithms.sampling import SamplerInterface

KINDS = ("tis", "icepop", "decoupled")
EPS = 0.2


def options(kind, cap=2.0, low=0.5, high=2.0):
    return SimpleNamespace(correction=kind, is_cap=cap, mask_low=low, mask_high=high)


def reference(logp, prox, behav, adv, kind, cap, low, high):
    """Per token, in plain floats: (weight, dropped, loss, d loss / d logp)."""
    rows = []
    for lp, px, bh, a in zip(logp.tolist(), prox.tolist(), behav.tolist(), adv.tolist(),
                             strict=True):
        w = math.exp(px - bh)
        if kind == "tis":
            c, dropped = min(w, cap), False
        elif kind == "icepop":
            dropped = w < low or w > high
            c = 0.0 if dropped else w
        else:  # decoupled: AReaL zeroes the tokens whose behaviour weight exceeds the cap
            dropped = w > cap
            c = 0.0 if dropped else w
        rho = math.exp(lp - px)
        unclipped, clipped = -a * rho, -a * min(max(rho, 1 - EPS), 1 + EPS)
        grad = c * -a * rho if unclipped >= clipped else 0.0
        rows.append((c, dropped, c * max(unclipped, clipped), grad))
    return rows


def tensors(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    prox = torch.randn(n, generator=g) * 0.5 - 1.0
    behav = prox + torch.randn(n, generator=g) * 0.8  # weights from ~e^-2 to ~e^2
    logp = prox + torch.randn(n, generator=g) * 0.3  # ratios on both sides of the clip
    adv = torch.randn(n, generator=g)
    return logp, prox, behav, adv


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bounds", [(2.0, 0.5, 2.0), (1.5, 0.8, 1.25)])
def test_weights_losses_and_gradients_match_a_token_loop(kind, bounds):
    cap, low, high = bounds
    logp, prox, behav, adv = tensors()
    logp.requires_grad_(True)
    weight, dropped = rl.correction_weights(prox, behav, options(kind, cap, low, high))
    per_token = rl.policy_loss(logp, prox, adv, EPS, EPS)["loss"] * weight
    loss = rl.aggregate(per_token, torch.tensor([0, 20, 64]), "token-mean")
    loss.backward()
    ref = reference(logp.detach(), prox, behav, adv, kind, cap, low, high)
    n = len(ref)
    torch.testing.assert_close(weight, torch.tensor([r[0] for r in ref]), rtol=1e-6, atol=1e-6)
    assert dropped.tolist() == [r[1] for r in ref]
    # Dropped tokens count in the denominator (IcePop's 1/|y|, AReaL's loss-mask count).
    torch.testing.assert_close(loss.detach(), torch.tensor(sum(r[2] for r in ref) / n),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logp.grad, torch.tensor([r[3] / n for r in ref]),
                               rtol=1e-5, atol=1e-7)
    assert not weight.requires_grad
    if kind == "tis":
        assert not dropped.any() and weight.max() == cap
    else:
        assert 0 < int(dropped.sum()) < n and (weight[dropped] == 0).all()


def test_weights_are_detached_and_finite_for_extreme_mismatch():
    prox = torch.tensor([0.0, -200.0, 200.0, -1.0], requires_grad=True)
    behav = torch.tensor([0.0, 0.0, 0.0, -1.0])
    for kind in KINDS:
        weight, dropped = rl.correction_weights(prox, behav, options(kind))
        assert not weight.requires_grad and torch.isfinite(weight).all()
        assert weight[0] == weight[3] == 1.0 and not dropped[0] and not dropped[3]
    assert rl.correction_weights(prox, behav, options("tis"))[0][2] == 2.0
    assert rl.correction_weights(prox, behav, options("icepop"))[1].tolist() == [
        False, True, True, False]
    assert rl.correction_weights(prox, behav, options("decoupled"))[1].tolist() == [
        False, False, True, False]
    with pytest.raises(ValueError, match="no weights for correction 'none'"):
        rl.correction_weights(prox, behav, options("none"))


def test_decoupled_unclipped_term_is_the_ratio_to_the_behaviour_policy():
    """``pi/pi_prox * pi_prox/pi_behav = pi/pi_behav``: the decoupled objective's unclipped term."""
    logp, prox, behav, adv = tensors(seed=1)
    weight, dropped = rl.correction_weights(prox, behav, options("decoupled", cap=100.0))
    assert not dropped.any()
    torch.testing.assert_close(torch.exp(logp - prox) * weight, torch.exp(logp - behav))


# ---------------------------------------------------------------------- the policy trainer


def with_logprobs(rollout, values, key="packed_logprobs"):
    """A copy of ``rollout`` whose per-token ``key`` holds ``values``."""
    data = rollout.select(list(rollout.data))
    data.data[key] = values
    data.seqlens[key] = [list(s) for s in data.seqlens["packed_input_ids"]]
    return data


def train_once(rollout, kind, prox, **policy):
    """Metrics of one policy update (one minibatch) on a fresh tiny actor."""
    handle = trainable(tiny())
    data = with_logprobs(rollout, prox, "packed_prox_logprobs")
    rollout_opts = None if kind == "none" else RolloutOptions(correction=kind)
    iface = PolicyInterface(PolicyOptions(minibatches=1, **policy), KLOptions(),
                            GenerationOptions(n_samples=2), rollout_opts)
    return iface.train_step(handle, data)


@pytest.fixture(scope="module")
def sampled():
    """A rollout of the tiny actor and its own log-probs of it, recomputed (the proximal ones)."""
    gen = GenerationOptions(n_samples=2)
    handle = trainable(tiny())
    _, rollout = rollout_for_training(handle, gen)
    prox = SamplerInterface(gen, seed=3).inference(handle, rollout).data["logprobs"]
    advantages = torch.randn(len(prox), generator=torch.Generator().manual_seed(0))
    return with_logprobs(rollout, advantages, "advantages"), prox  # (whitened ones are all 0)


@pytest.mark.parametrize("kind", KINDS)
def test_same_weights_give_weight_one_and_the_uncorrected_update(sampled, kind):
    rollout, prox = sampled
    base, got = train_once(rollout, "none", prox), train_once(rollout, kind, prox)
    assert abs(got["/rollout/is_weight_mean"] - 1) <= 1e-4
    assert got.get("/rollout/masked_frac", 0.0) == 0.0
    assert abs(base["pg_loss"]) > 1e-3
    for key in ("loss", "pg_loss", "clip_frac", "approx_kl", "ratio_max"):
        assert math.isclose(got[key], base[key], rel_tol=1e-4, abs_tol=1e-6), key


def test_tis_weighs_and_icepop_drops_a_mismatched_sampler(sampled):
    """The sampler saw every token 3x less likely than the trainer (w = 3, above is_cap=2 and
    mask_high=2); the uncorrected update takes its ratio against the same proximal log-probs."""
    rollout, prox = sampled
    base = train_once(with_logprobs(rollout, prox), "none", prox)
    shifted = with_logprobs(rollout, prox - math.log(3.0))
    tis = train_once(shifted, "tis", prox)
    assert abs(base["pg_loss"]) > 1e-3
    assert math.isclose(tis["pg_loss"], 2.0 * base["pg_loss"], rel_tol=1e-5, abs_tol=1e-7)
    assert math.isclose(tis["/rollout/is_weight_mean"], 2.0, rel_tol=1e-6)
    for kind in ("icepop", "decoupled"):
        dropped = train_once(shifted, kind, prox)
        assert dropped["pg_loss"] == 0.0 and dropped["/rollout/masked_frac"] == 1.0
        assert dropped["/rollout/is_weight_mean"] == 0.0


# ---------------------------------------------------------------------- config and graph


@pytest.mark.parametrize("sets, message", [
    (["rollout.is_cap=3"], "rollout.is_cap is set, but rollout.correction=none does not use it; "
                           "set rollout.correction=tis or decoupled"),
    (["rollout.correction=tis", "rollout.mask_high=3"], "rollout.correction=icepop"),
    (["rollout.correction=icepop", "rollout.mask_low=0.9", "rollout.mask_high=0.8"],
     r"rollout.mask_low=0.9 must be below rollout.mask_high=0.8"),
    (["rollout.correction=icepop", "rollout.mask_low=1.1", "rollout.mask_high=3"],
     "must lie on either side of 1"),
    (["rollout.correction=decoupled", "rollout.is_cap=1"], "rollout.is_cap.*> 1"),
    (["rollout.correction=vtrace"], "rollout.correction"),
])
def test_settings_that_cannot_work_are_refused(sets, message):
    with pytest.raises(ConfigError, match=message):
        resolve_experiment("grpo", None, sets)


def mfc_names(*sets):
    _, cfg = resolve_experiment("grpo", None, list(sets))
    return [m.name for m in build_experiment("grpo", cfg).graph().order]


def test_actor_inf_scores_before_the_update_only_with_a_correction():
    assert "actor_inf" not in mfc_names()
    for kind in KINDS:
        order = mfc_names(f"rollout.correction={kind}", "gen.top_k=5")
        assert order.index("actor_gen") < order.index("actor_inf") < order.index("actor_train")


RUN = ["warm_start.sft_steps=0", "run.max_steps=2", "run.batch_size=8",
       "reward.functions=[format_penalty]"]  # rewards that differ within a group: it trains


@pytest.fixture(scope="module")
def uncorrected(tmp_path_factory):
    return train_rl("grpo", tmp_path_factory.mktemp("none"), None, *RUN)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_short_grpo_run_logs_weights_near_one_with_the_local_sampler(tmp_path, kind, uncorrected):
    """The local sampler and actor_inf score with the same weights: weights ~1, nothing
    dropped, and the update is the uncorrected one's."""
    rows = train_rl("grpo", tmp_path, None, *RUN, f"rollout.correction={kind}")
    assert len(rows) == 2
    for row, base in zip(rows, uncorrected, strict=True):
        assert "time/actor_inf" in row and "time/actor_inf" not in base
        weight = row["rollout/is_weight_mean"]
        assert math.isfinite(weight) and abs(weight - 1) <= 1e-4
        assert row.get("rollout/masked_frac", 0.0) == 0.0
        assert ("rollout/masked_frac" in row) == (kind != "tis")
        assert row["actor_train/approx_kl"] > 0  # the second minibatch trained on new weights
        for key in ("loss", "pg_loss", "clip_frac", "approx_kl", "ratio_max"):
            got, want = row[f"actor_train/{key}"], base[f"actor_train/{key}"]
            assert math.isclose(got, want, rel_tol=1e-3, abs_tol=1e-6), (key, got, want)

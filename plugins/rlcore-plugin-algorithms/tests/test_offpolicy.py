"""Off-policy correction (``rollout.correction``): the weights and losses against plain per-token
loops."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from rlcore_plugin_algorithms import rl

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

"""Losses against reference formulas computed independently on the same tensors."""

import math

import pytest
import torch

from rlcore_plugin_algorithms import losses
from rlcore_plugin_algorithms.packed import next_token_query, target_mask


def packed(seqlens, vocab=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    total = sum(seqlens)
    cu = torch.tensor([0, *torch.tensor(seqlens).cumsum(0).tolist()], dtype=torch.int32)
    return torch.randn(total, vocab, generator=g), torch.randint(0, vocab, (total,), generator=g), cu


def test_sft_loss_is_cross_entropy_on_answer_tokens_only():
    logits, ids, cu = packed([4, 6])
    mask = torch.tensor([0, 0, 1, 1, 0, 0, 0, 1, 1, 1], dtype=torch.bool)
    answer = target_mask(mask, cu)
    query = next_token_query(ids, answer)
    logp = torch.log_softmax(logits[query.positions], -1).gather(-1, query.targets[:, None])
    loss, n = losses.sft_loss(logp.squeeze(-1))
    # predictions of tokens 2,3 (seq 0) and 7,8,9 (seq 1) come from positions 1,2 and 6,7,8
    positions, targets = torch.tensor([1, 2, 6, 7, 8]), ids[[2, 3, 7, 8, 9]]
    assert query.positions.tolist() == positions.tolist()
    ref = torch.nn.functional.cross_entropy(logits[positions], targets)
    assert n == 5
    torch.testing.assert_close(loss, ref)


def test_bradley_terry():
    chosen, rejected = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.5])
    loss, acc = losses.bradley_terry_loss(chosen, rejected)
    ref = sum(math.log1p(math.exp(-(c - r))) for c, r in zip(chosen.tolist(), rejected.tolist(), strict=True)) / 3
    assert loss.item() == pytest.approx(ref)
    assert acc.item() == pytest.approx(1 / 3)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_dpo_sigmoid_matches_formula(smoothing):
    pc, pr, rc, rr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0]), torch.tensor([-3.5, -4.0]), torch.tensor([-3.5, -3.0])
    beta = 0.1
    loss, cr, rr_ = losses.dpo_loss(pc, pr, rc, rr, beta, "sigmoid", smoothing)
    for i in range(2):
        h = (pc[i] - rc[i]) - (pr[i] - rr[i])
        sig = 1 / (1 + math.exp(-beta * h))
        ref = -(1 - smoothing) * math.log(sig) - smoothing * math.log(1 - sig)
        assert loss[i].item() == pytest.approx(ref, rel=1e-5)
    torch.testing.assert_close(cr, beta * (pc - rc))
    torch.testing.assert_close(rr_, beta * (pr - rr))


def test_dpo_ipo_matches_formula():
    pc, pr, rc, rr = torch.tensor([-3.0]), torch.tensor([-4.0]), torch.tensor([-3.5]), torch.tensor([-3.0])
    loss, _, _ = losses.dpo_loss(pc, pr, rc, rr, beta=0.5, loss_type="ipo")
    h = (-3.0 + 4.0) - (-3.5 + 3.0)
    assert loss.item() == pytest.approx((h - 1 / (2 * 0.5)) ** 2)


def test_dpo_rejects_unknown_loss():
    with pytest.raises(ValueError, match="unknown DPO loss_type 'hinge2'"):
        losses.dpo_loss(*[torch.zeros(1)] * 4, beta=0.1, loss_type="hinge2")


# KTO, ORPO and SimPO against their definitions as TRL writes them (kto_trainer.py kto_loss,
# orpo_trainer.py odds_ratio_loss, cpo_trainer.py with loss_type="simpo"), in float64 on the
# same tensors: values and gradients at 1e-6.

def leaves(*values):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]


def grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


def assert_same(ours, theirs, ours_in, theirs_in):
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    for a, b in zip(grads(ours, ours_in), grads(theirs, theirs_in), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.5, 0.5)])
def test_kto_matches_trl(weights):
    beta, (wd, wu) = 0.3, weights
    label = torch.tensor([True, False, False, True, False])
    pol, ref = [-3.0, -5.0, -2.5, -4.0, -6.0], [-3.5, -4.0, -2.0, -4.5, -5.0]
    pol_kl, ref_kl = [-6.0, -7.5, -5.0, -6.5, -8.0], [-7.0, -7.0, -5.5, -7.5, -8.5]
    ours_in, theirs_in = leaves(pol, ref), leaves(pol, ref)
    z0 = losses.kto_reference_point(torch.tensor(pol_kl, dtype=torch.float64),
                                    torch.tensor(ref_kl, dtype=torch.float64))
    per, rewards = losses.kto_loss(*ours_in, label, z0, beta, wd, wu)
    # TRL: KL = mean(policy_KL - reference_KL), detached, clamped at 0; chosen and rejected
    # losses concatenated, weighted, then averaged
    p, r = theirs_in
    kl = (torch.tensor(pol_kl) - torch.tensor(ref_kl)).mean().clamp(min=0).double()
    chosen = 1 - torch.sigmoid(beta * ((p[label] - r[label]) - kl))
    rejected = 1 - torch.sigmoid(beta * (kl - (p[~label] - r[~label])))
    theirs = torch.cat([wd * chosen, wu * rejected]).mean()
    assert z0.item() == pytest.approx(0.5, abs=1e-12)  # (1 - .5 + .5 + 1 + .5) / 5
    assert_same(per.mean(), theirs, ours_in, theirs_in)
    torch.testing.assert_close(rewards, beta * (p - r).detach())


def test_kto_reference_point_is_clamped_and_averaged_over_ranks():
    assert losses.kto_reference_point(torch.tensor([-2.0]), torch.tensor([-1.0])).item() == 0.0
    other = [torch.tensor([4.0, 2.0, 0.0]).sum().item(), 3.0]  # another rank's sum and count
    z0 = losses.kto_reference_point(torch.tensor([1.0]), torch.tensor([0.0]),
                                    lambda v: [a + b for a, b in zip(v, other, strict=True)])
    assert z0.item() == pytest.approx((1 + 4 + 2 + 0) / 4)


def test_orpo_matches_trl():
    beta = 0.25
    # per-token log-probs of two pairs' answers (lengths 2, 3 / 4, 1)
    chosen_tokens = [[-0.2, -0.9], [-0.1, -0.3, -0.7]]
    rejected_tokens = [[-1.1, -0.4, -2.0, -0.6], [-0.8]]
    ours_in = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in chosen_tokens + rejected_tokens]
    theirs_in = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in chosen_tokens + rejected_tokens]
    sums = torch.stack([t.sum() for t in ours_in])
    lens = torch.tensor([len(t) for t in chosen_tokens + rejected_tokens], dtype=torch.float64)
    loss, ratio_term, cr, rr = losses.orpo_loss(sums[:2], sums[2:], lens[:2], lens[2:], beta)
    # TRL: average log-probs; log_odds = (c - r) - (log1p(-exp c) - log1p(-exp r));
    # loss = NLL(chosen tokens, token mean) - beta * mean(logsigmoid(log_odds))
    c = torch.stack([t.mean() for t in theirs_in[:2]])
    r = torch.stack([t.mean() for t in theirs_in[2:]])
    log_odds = (c - r) - (torch.log1p(-torch.exp(c)) - torch.log1p(-torch.exp(r)))
    nll = -torch.cat(theirs_in[:2]).mean()
    theirs = nll - (beta * torch.nn.functional.logsigmoid(log_odds)).mean()
    assert_same(loss, theirs, ours_in, theirs_in)
    torch.testing.assert_close(ratio_term, -beta * torch.nn.functional.logsigmoid(log_odds).detach())
    torch.testing.assert_close(cr, beta * c.detach())
    torch.testing.assert_close(rr, beta * r.detach())


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_simpo_matches_trl(smoothing):
    beta, gamma = 2.0, 0.5
    c, r = [-0.4, -1.2, -0.3], [-0.9, -0.8, -0.35]
    ours_in, theirs_in = leaves(c, r), leaves(c, r)
    per, cr, rr = losses.simpo_loss(*ours_in, beta, gamma, smoothing)
    # TRL (CPO trainer, loss_type="simpo", cpo_alpha=0): logits = (c - r) - gamma / beta,
    # -logsigmoid(beta * logits) (1 - ls) - logsigmoid(-beta * logits) ls
    tc, tr = theirs_in
    logits = (tc - tr) - gamma / beta
    theirs = (-torch.nn.functional.logsigmoid(beta * logits) * (1 - smoothing)
              - torch.nn.functional.logsigmoid(-beta * logits) * smoothing)
    assert_same(per.mean(), theirs.mean(), ours_in, theirs_in)
    torch.testing.assert_close(per, theirs.detach())
    torch.testing.assert_close(cr, beta * tc.detach())
    torch.testing.assert_close(rr, beta * tr.detach())


def test_answer_lengths_count_the_scored_answer_tokens():
    import numpy as np

    from rlcore.sdk import INPUT_IDS, LOSS_MASK, PackedBatch
    from rlcore_plugin_algorithms.interfaces import answer_lengths

    masks = [[0, 0, 1, 1], [0, 1, 1, 1, 1], [0, 0, 0, 1]]
    batch = PackedBatch.from_sequences(
        ["a", "b"], {INPUT_IDS: [[np.arange(4), np.arange(5)], [np.arange(4)]],
                     LOSS_MASK: [[np.array(m, dtype=bool) for m in masks[:2]], [np.array(masks[2], dtype=bool)]]},
        dtypes={INPUT_IDS: torch.int64, LOSS_MASK: torch.bool})
    assert answer_lengths(batch).tolist() == [2.0, 4.0, 1.0]

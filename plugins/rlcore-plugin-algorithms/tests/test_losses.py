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

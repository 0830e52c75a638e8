"""Rounding defects of the RL math: each case failed before its fix (issue 23, item 4)."""

import pytest
import torch

from rlcore_plugin_algorithms import rl


def _groups(*sizes):
    return rl.group_offsets(list(sizes))


@pytest.mark.parametrize("value", [0.7, 0.1, -3.3, 1e-3])
def test_group_estimators_give_exactly_zero_for_a_group_of_equal_rewards(value):
    # one group of 16 equal rewards, one of 6 (not a power of 2), one that differs
    scores = torch.tensor([value] * 16 + [value] * 6 + [0.0, 1.0, 0.2], dtype=torch.float32)
    groups = _groups(16, 6, 3)
    for adv in (rl.grpo_advantages(scores, groups), rl.grpo_advantages(scores, groups, False),
                rl.rloo_advantages(scores, groups)):
        assert adv.dtype == torch.float32
        assert torch.equal(adv[:22], torch.zeros(22)), adv[:22]
        assert adv[22:].abs().min() > 0.1  # the group that differs still gets advantages


def test_grpo_advantages_in_float64_match_the_float32_formula_elsewhere():
    scores = torch.tensor([0.3, 0.9, 0.1, 0.4, 2.0, -1.0])
    ref = []
    for g in (scores[:4], scores[4:]):
        ref.append((g - g.mean()) / (g.std() + 1e-6))
    torch.testing.assert_close(rl.grpo_advantages(scores, _groups(4, 2)), torch.cat(ref),
                               rtol=1e-6, atol=1e-6)


def test_gspo_sequence_log_ratio_value_is_exactly_the_sequence_mean():
    gen = torch.Generator().manual_seed(0)
    old = -5 * torch.rand(40, generator=gen) - 3  # log-probs far from 0: large ulp
    logp = (old + 1e-3 * torch.randn(40, generator=gen)).requires_grad_()
    cu = torch.tensor([0, 7, 20, 21, 40])
    got = rl.sequence_log_ratio(logp, old, cu)
    lengths = cu[1:] - cu[:-1]
    means = torch.stack([(logp - old).detach()[s:e].sum() / (e - s)
                         for s, e in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True)])
    assert torch.equal(got.detach(), torch.repeat_interleave(means, lengths))
    got.sum().backward()
    assert torch.equal(logp.grad, torch.ones(40))


def test_value_clip_fraction_counts_only_updates_beyond_the_range():
    gen = torch.Generator().manual_seed(0)
    old = 0.1 * torch.randn(10_000, generator=gen)
    values = (old + 0.4 * torch.rand(10_000, generator=gen)) - 0.2  # within +-0.2 of old ...
    values[:100] = old[:100] + 0.5  # ... except 100 tokens
    returns = old + torch.randn(10_000, generator=gen)
    assert (old + (values - old) != values).sum() > 100  # float32: the update rounds
    out = rl.value_loss(values, old, returns, 0.2)
    in_range = (values - old).abs() <= 0.2
    assert not out["clipped"][in_range].any(), int(out["clipped"][in_range].sum())
    # in range the loss is exactly the unclipped one
    assert torch.equal(out["loss"][in_range], 0.5 * ((values - returns) ** 2)[in_range])
    beyond = ~in_range
    ref = torch.maximum((values - returns) ** 2,
                        (old + (values - old).clamp(-0.2, 0.2) - returns) ** 2)
    assert torch.equal(out["clipped"][beyond], (ref > (values - returns) ** 2)[beyond])

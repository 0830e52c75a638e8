"""RL math against plain-loop references over sequences and tokens, on uneven packed lengths."""

import json
import math

import numpy as np
import pytest
import torch

from rlcore.models.token_logprobs import entropy_from_logprobs
from rlcore_plugin_algorithms import rl

LENGTHS = [3, 1, 5, 2]
TOL = {"rtol": 1e-6, "atol": 1e-6}


def offsets(lengths):
    return torch.tensor([0, *np.cumsum(lengths).tolist()], dtype=torch.int32)


def spans(cu):
    return [(int(cu[b]), int(cu[b + 1])) for b in range(len(cu) - 1)]


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def close(got, ref):
    torch.testing.assert_close(got, torch.as_tensor(ref, dtype=torch.float32), **TOL)


def test_padded_unpadded_round_trip():
    cu, x = offsets(LENGTHS), randn(sum(LENGTHS))
    xp, mask = rl.padded(x, cu, fill=-7.0)
    assert xp.shape == mask.shape == (4, 5) and mask.dtype == torch.bool
    for b, (s, e) in enumerate(spans(cu)):
        assert torch.equal(xp[b, : e - s], x[s:e])
        assert (xp[b, e - s :] == -7.0).all()
        assert mask[b].tolist() == [i < e - s for i in range(5)]
    assert torch.equal(rl.unpadded(xp, mask), x)


def gae_reference(rewards, values, cu, gamma, lam, last_values):
    adv = [0.0] * len(rewards)
    for b, (s, e) in enumerate(spans(cu)):
        next_value, running = last_values[b], 0.0
        for t in reversed(range(s, e)):
            delta = rewards[t] + gamma * next_value - values[t]
            running = delta + gamma * lam * running
            adv[t], next_value = running, values[t]
    return adv, [a + v for a, v in zip(adv, values, strict=True)]


@pytest.mark.parametrize("bootstrap", [False, True])
def test_gae_matches_reference(bootstrap):
    cu, n = offsets(LENGTHS), sum(LENGTHS)
    rewards, values = randn(n, seed=1), randn(n, seed=2)
    last = randn(4, seed=3) if bootstrap else None
    ref_last = last.tolist() if bootstrap else [0.0] * 4
    adv, ret = rl.gae(rewards, values, cu, gamma=0.9, lam=0.8, last_values=last)
    ref_adv, ref_ret = gae_reference(rewards.tolist(), values.tolist(), cu, 0.9, 0.8, ref_last)
    close(adv, ref_adv)
    close(ret, ref_ret)


def test_gae_with_unit_gamma_lambda_is_reward_to_go_minus_value():
    cu, n = offsets(LENGTHS), sum(LENGTHS)
    rewards, values = randn(n, seed=4), randn(n, seed=5)
    adv, ret = rl.gae(rewards, values, cu, gamma=1.0, lam=1.0)
    r, v = rewards.tolist(), values.tolist()
    ref = [sum(r[t:e]) - v[t] for s, e in spans(cu) for t in range(s, e)]
    close(adv, ref)
    close(ret, [sum(r[t:e]) for s, e in spans(cu) for t in range(s, e)])


@pytest.mark.parametrize("kind", rl.KL_KINDS)
def test_kl_penalty_kinds(kind):
    logp, ref_logp = randn(11, seed=6) - 2, randn(11, seed=7) - 2
    formulas = {
        "k1": lambda d: d,
        "k2": lambda d: 0.5 * d * d,
        "k3": lambda d: math.exp(-d) + d - 1,
    }
    ref = [formulas[kind](a - b) for a, b in zip(logp.tolist(), ref_logp.tolist(), strict=True)]
    close(rl.kl_penalty(logp, ref_logp, kind), ref)


def test_kl_k3_is_finite_for_extreme_log_ratios_and_unknown_kind_fails():
    out = rl.kl_penalty(torch.tensor([-200.0, 0.0]), torch.tensor([0.0, -200.0]), "k3")
    assert torch.isfinite(out).all() and (out > 0).all()
    with pytest.raises(ValueError, match="'k1', 'k2', 'k3'"):
        rl.kl_penalty(torch.zeros(1), torch.zeros(1), "k4")


@pytest.mark.parametrize("with_kl", [False, True])
def test_token_rewards(with_kl):
    cu, n = offsets(LENGTHS), sum(LENGTHS)
    seq_rewards, kl = randn(4, seed=8), randn(n, seed=9)
    got = rl.token_rewards(seq_rewards, cu, kl if with_kl else None, kl_coef=0.05)
    ref = []
    for b, (s, e) in enumerate(spans(cu)):
        for t in range(s, e):
            r = -0.05 * kl[t].item() if with_kl else 0.0
            ref.append(r + (seq_rewards[b].item() if t == e - 1 else 0.0))
    close(got, ref)


def test_token_rewards_rejects_empty_sequences():
    with pytest.raises(ValueError, match="at least one action"):
        rl.token_rewards(torch.ones(2), offsets([2, 0]), None, 0.1)


def whiten_reference(x, selected, shift_mean, eps=1e-8, stats=None):
    if stats is None:
        mean = sum(selected) / len(selected)
        var = sum((v - mean) ** 2 for v in selected) / len(selected)
    else:
        mean, var = stats
    out = [(v - mean) / math.sqrt(var + eps) for v in x]
    return out if shift_mean else [o + mean for o in out]


@pytest.mark.parametrize("shift_mean", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_whiten(shift_mean, masked):
    x = randn(13, seed=10) * 3 + 1.5
    mask = torch.tensor([i % 3 != 0 for i in range(13)]) if masked else None
    selected = [v for i, v in enumerate(x.tolist()) if not masked or mask[i]]
    got = rl.whiten(x, mask, shift_mean=shift_mean)
    close(got, whiten_reference(x.tolist(), selected, shift_mean))


def test_whiten_with_given_stats_and_moments_over_shards():
    x = randn(13, seed=11) * 2 - 1
    close(
        rl.whiten(x, stats=(0.3, 4.0)), whiten_reference(x.tolist(), None, True, stats=(0.3, 4.0))
    )
    shards = [rl.moments(x[:5]), rl.moments(x[5:])]
    total, total_sq, count = (sum(m[i] for m in shards) for i in range(3))
    mean, var = rl.moments_to_stats(total, total_sq, count)
    xs = np.asarray(x.tolist(), dtype=np.float64)
    assert count == 13
    assert mean == pytest.approx(xs.mean(), abs=1e-9) and var == pytest.approx(xs.var(), abs=1e-9)
    close(rl.whiten(x, stats=(mean, var)), rl.whiten(x))


def policy_reference(logp, old, adv, low, high, dual):
    losses, clipped = [], []
    for lp, olp, a in zip(logp, old, adv, strict=True):
        r = math.exp(lp - olp)
        s1, s2 = -a * r, -a * min(max(r, 1 - low), 1 + high)
        loss = max(s1, s2)
        if dual is not None and a < 0:
            loss = min(loss, -a * dual)
        losses.append(loss)
        clipped.append(s2 > s1)
    return losses, clipped


@pytest.mark.parametrize(
    "low,high,dual", [(0.2, 0.2, None), (0.2, 0.28, None), (0.1, 0.3, 1.5), (0.2, 0.2, 2.0)]
)
def test_policy_loss(low, high, dual):
    n = 64
    old = randn(n, seed=12) - 3
    logp = (old + 0.6 * randn(n, seed=13)).requires_grad_()
    adv = randn(n, seed=14) * 2
    out = rl.policy_loss(logp, old, adv, low, high, dual)
    ref_loss, ref_clipped = policy_reference(
        logp.tolist(), old.tolist(), adv.tolist(), low, high, dual
    )
    close(out["loss"], ref_loss)
    assert out["clipped"].tolist() == ref_clipped
    assert 0 < sum(ref_clipped) < n  # the fixture exercises both branches
    close(out["ratio"], [math.exp(a - b) for a, b in zip(logp.tolist(), old.tolist(), strict=True)])
    close(
        out["approx_kl"],
        [0.5 * (a - b) ** 2 for a, b in zip(logp.tolist(), old.tolist(), strict=True)],
    )
    assert not out["ratio"].requires_grad and not out["approx_kl"].requires_grad
    if dual is not None:
        undual, _ = policy_reference(logp.tolist(), old.tolist(), adv.tolist(), low, high, None)
        assert any(a != b for a, b in zip(undual, ref_loss, strict=True))  # dual clip is active


def test_policy_loss_rejects_dual_clip_at_most_one():
    with pytest.raises(ValueError, match="dual_clip"):
        rl.policy_loss(torch.zeros(1), torch.zeros(1), torch.ones(1), 0.2, 0.2, dual_clip=1.0)


@pytest.mark.parametrize("eps", [None, 0.0, 0.2])
def test_value_loss(eps):
    n = 40
    old, returns = randn(n, seed=15), randn(n, seed=16)
    values = old + 0.5 * randn(n, seed=17)
    out = rl.value_loss(values, old, returns, eps)
    ref_loss, ref_clipped = [], []
    for v, o, r in zip(values.tolist(), old.tolist(), returns.tolist(), strict=True):
        unclipped = (v - r) ** 2
        clipped = (o + min(max(v - o, -eps), eps) - r) ** 2 if eps else unclipped
        ref_loss.append(0.5 * max(unclipped, clipped))
        ref_clipped.append(clipped > unclipped)
    close(out["loss"], ref_loss)
    assert out["clipped"].tolist() == ref_clipped
    assert (0 < sum(ref_clipped) < n) if eps else not any(ref_clipped)


NORM = 7.0  # seq-mean-token-sum-norm's constant (a generation budget)


def aggregate_reference(x, cu, mode):
    if mode == "token-mean":
        return sum(x[t] for t in range(len(x))) / len(x)
    per_seq = []
    for s, e in spans(cu):
        if e > s:
            total = sum(x[t] for t in range(s, e))
            divisor = {"seq-mean-token-mean": e - s, "seq-mean-token-sum-norm": NORM}.get(mode, 1)
            per_seq.append(total / divisor)
    return sum(per_seq) / len(per_seq)


@pytest.mark.parametrize("lengths", [LENGTHS, [3, 0, 1, 5, 2]])
@pytest.mark.parametrize("mode", rl.AGGREGATIONS)
def test_aggregate_values_and_gradients(mode, lengths):
    cu = offsets(lengths)
    x = randn(sum(lengths), seed=18).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    got, ref = rl.aggregate(x, cu, mode, norm=NORM), aggregate_reference(x_ref, cu, mode)
    close(got, ref.detach())
    got.backward()
    ref.backward()
    close(x.grad, x_ref.grad)


def test_aggregate_rejects_unknown_mode():
    with pytest.raises(ValueError, match="seq-mean-token-sum"):
        rl.aggregate(torch.ones(3), offsets([3]), "seq-sum")


def test_entropy_over_allowed_tokens_only():
    logits = randn(5, 7, seed=19) * 2
    allowed = torch.rand(5, 7, generator=torch.Generator().manual_seed(20)) > 0.4
    allowed[:, 0] = True
    allowed[4] = False
    allowed[4, 3] = True  # a single allowed token: entropy 0
    masked = logits.masked_fill(~allowed, float("-inf")).requires_grad_()
    ref = []
    for row, keep in zip(logits.tolist(), allowed.tolist(), strict=True):
        z = [v for v, k in zip(row, keep, strict=True) if k]
        norm = sum(math.exp(v) for v in z)
        ref.append(-sum(math.exp(v) / norm * math.log(math.exp(v) / norm) for v in z))
    got = entropy_from_logprobs(torch.log_softmax(masked.float(), dim=-1))
    close(got, ref)
    assert ref[4] == 0 and min(ref[:4]) > 0
    got.sum().backward()
    assert torch.isfinite(masked.grad).all() and (masked.grad[~allowed] == 0).all()


def test_explained_variance():
    returns = randn(20, seed=21)
    values = returns + 0.5 * randn(20, seed=22)
    r, v = np.asarray(returns.tolist()), np.asarray(values.tolist())
    ref = 1 - np.var(r - v) / np.var(r)
    assert rl.explained_variance(values, returns) == pytest.approx(ref, abs=1e-6)
    assert 0 < ref < 1
    assert rl.explained_variance(values, torch.full((20,), 2.0)) == 0.0
    assert rl.explained_variance(values[:1], returns[:1]) == 0.0


def test_adaptive_kl_controller_follows_formula_and_round_trips():
    ctl = rl.kl_controller("adaptive", init=0.2, target=0.1, horizon=1000)
    assert isinstance(ctl, rl.AdaptiveKLController)
    ref = 0.2
    for kl in [0.5, 0.05, 0.12, 0.3, 0.01, 0.1]:
        ctl.update(kl, n_steps=64)
        ref *= 1 + min(max(kl / 0.1 - 1, -0.2), 0.2) * 64 / 1000
        assert ctl.value == pytest.approx(ref, rel=1e-12)
    assert ctl.value != pytest.approx(0.2)
    restored = rl.kl_controller("adaptive", init=1.0, target=0.1, horizon=1000)
    restored.load_state_dict(json.loads(json.dumps(ctl.state_dict())))
    ctl.update(0.2, 32)
    restored.update(0.2, 32)
    assert restored.value == ctl.value


def test_fixed_kl_controller_and_factory():
    ctl = rl.kl_controller("fixed", init=0.05, target=0.1, horizon=1000)
    ctl.update(10.0, 64)
    assert isinstance(ctl, rl.FixedKLController) and ctl.value == 0.05
    assert json.loads(json.dumps(ctl.state_dict())) == {"value": 0.05}
    with pytest.raises(ValueError, match="'fixed' or 'adaptive'"):
        rl.kl_controller("linear", 0.05, 0.1, 1000)


def batches():
    return [randn(n, seed=30 + i) * (i + 1) + i for i, n in enumerate([7, 1, 12, 5])]


def test_running_moments_ema_matches_numpy():
    rm, beta = rl.RunningMoments("ema", beta=0.9), 0.9
    mean = var = None
    for x in batches():
        rm.update(x)
        xs = np.asarray(x.tolist(), dtype=np.float64)
        if mean is None:
            mean, var = xs.mean(), xs.var()
        else:
            mean, var = beta * mean + (1 - beta) * xs.mean(), beta * var + (1 - beta) * xs.var()
        assert rm.mean == pytest.approx(mean, abs=1e-9)
        assert rm.std == pytest.approx(math.sqrt(var + 1e-8), abs=1e-9)


def test_running_moments_ma_is_exact_over_everything_seen():
    rm, seen = rl.RunningMoments("ma"), []
    for x in batches():
        rm.update(x)
        seen.extend(x.tolist())
        assert rm.mean == pytest.approx(np.mean(seen), abs=1e-9)
        assert rm.std == pytest.approx(math.sqrt(np.var(seen) + 1e-8), abs=1e-9)
    x = randn(6, seed=40)
    close(
        rm.normalize(x), [(v - np.mean(seen)) / math.sqrt(np.var(seen) + 1e-8) for v in x.tolist()]
    )
    close(rm.denormalize(rm.normalize(x)), x)


def test_running_moments_from_reduced_moments_and_state_round_trip():
    whole, split = rl.RunningMoments("ma"), rl.RunningMoments("ma")
    for x in batches():
        whole.update(x)
        shards = [rl.moments(x[: len(x) // 2]), rl.moments(x[len(x) // 2 :])]
        split.update_from_moments(*(sum(m[i] for m in shards) for i in range(3)))
    assert split.mean == pytest.approx(whole.mean, abs=1e-9)
    assert split.std == pytest.approx(whole.std, abs=1e-9)
    for kind in ("ema", "ma"):
        rm, restored = rl.RunningMoments(kind, 0.8), rl.RunningMoments(kind, 0.8)
        for x in batches()[:3]:
            rm.update(x)
        restored.load_state_dict(json.loads(json.dumps(rm.state_dict())))
        rm.update(batches()[3])
        restored.update(batches()[3])
        assert (restored.mean, restored.std) == (rm.mean, rm.std)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    cu, n = offsets(LENGTHS), sum(LENGTHS)
    r, v, lv = randn(n, seed=50), randn(n, seed=51), randn(4, seed=52)
    for got, ref in [
        (
            rl.gae(r.cuda(), v.cuda(), cu.cuda(), 0.9, 0.8, lv.cuda()),
            rl.gae(r, v, cu, 0.9, 0.8, lv),
        ),
        (rl.gae(r.cuda(), v.cuda(), cu, 0.9, 0.8), rl.gae(r, v, cu, 0.9, 0.8)),
        (rl.padded(r.cuda(), cu.cuda()), rl.padded(r, cu)),
    ]:
        for g, c in zip(got, ref, strict=True):
            assert g.device.type == "cuda"
            torch.testing.assert_close(g.cpu(), c)
    close(
        rl.token_rewards(lv.cuda(), cu.cuda(), v.cuda(), 0.1).cpu(),
        rl.token_rewards(lv, cu, v, 0.1),
    )
    for mode in rl.AGGREGATIONS:
        close(rl.aggregate(r.cuda(), cu.cuda(), mode).cpu(), rl.aggregate(r, cu, mode))
    close(rl.whiten(r.cuda(), torch.ones(n, dtype=torch.bool, device="cuda")).cpu(), rl.whiten(r))
    logits = randn(4, 9, seed=53).masked_fill(randn(4, 9, seed=54) > 1, float("-inf"))
    entropy = lambda x: entropy_from_logprobs(torch.log_softmax(x.float(), dim=-1))  # noqa: E731
    close(entropy(logits.cuda()).cpu(), entropy(logits))
    for kind in rl.KL_KINDS:
        close(rl.kl_penalty(r.cuda(), v.cuda(), kind).cpu(), rl.kl_penalty(r, v, kind))
    rm = rl.RunningMoments("ma")
    rm.update(r.cuda())
    assert rm.mean == pytest.approx(float(r.double().mean()), abs=1e-6)


# ---------------------------------------------------------------------- critic-free estimators

GROUPS = [3, 4, 1, 2]  # responses per prompt (a group of 1 has no spread)


def group_spans():
    start = 0
    for n in GROUPS:
        yield start, start + n
        start += n


def test_grpo_advantages_with_and_without_std_normalisation():
    scores = randn(sum(GROUPS), seed=40)
    groups = rl.group_offsets(GROUPS)
    ref_std, ref_dr = [], []
    for s, e in group_spans():
        xs = scores[s:e].tolist()
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
        ref_std += [(x - mean) / (std + 1e-6) for x in xs]
        ref_dr += [x - mean for x in xs]
    close(rl.grpo_advantages(scores, groups), ref_std)
    close(rl.grpo_advantages(scores, groups, std_norm=False), ref_dr)


def test_rloo_leaves_each_response_out_of_its_baseline():
    sizes = [3, 4, 2]
    scores = randn(sum(sizes), seed=41)
    ref, start = [], 0
    for n in sizes:
        xs = scores[start : start + n].tolist()
        ref += [x - (sum(xs) - x) / (n - 1) for x in xs]
        start += n
    close(rl.rloo_advantages(scores, rl.group_offsets(sizes)), ref)
    with pytest.raises(ValueError, match="at least 2 responses"):
        rl.rloo_advantages(scores[:4], rl.group_offsets([3, 1]))


def test_remax_subtracts_the_greedy_baseline_of_each_prompt():
    scores = randn(sum(GROUPS), seed=42)
    baselines = randn(len(GROUPS), seed=43)
    ref = []
    for g, (s, e) in enumerate(group_spans()):
        ref += [x - baselines[g].item() for x in scores[s:e].tolist()]
    close(rl.remax_advantages(scores, baselines, rl.group_offsets(GROUPS)), ref)


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_reward_to_go(gamma):
    cu = offsets(LENGTHS)
    rewards = randn(sum(LENGTHS), seed=44)
    ref = []
    for s, e in spans(cu):
        ref += [sum(gamma ** (k - t) * rewards[k].item() for k in range(t, e)) for t in range(s, e)]
    close(rl.reward_to_go(rewards, cu, gamma), ref)


def test_gspo_sequence_ratio_value_and_gradient():
    cu = offsets(LENGTHS)
    logp = randn(sum(LENGTHS), seed=45).requires_grad_()
    old = randn(sum(LENGTHS), seed=46)
    log_ratio = rl.sequence_log_ratio(logp, old, cu)
    ref = []
    for s, e in spans(cu):
        mean = sum(logp[t].item() - old[t].item() for t in range(s, e)) / (e - s)
        ref += [mean] * (e - s)
    close(log_ratio, ref)
    # d ratio_t / d logp_t = ratio_t (the sequence ratio), nothing across tokens.
    torch.exp(log_ratio).sum().backward()
    close(logp.grad, [math.exp(v) for v in ref])
    out = rl.policy_loss(logp.detach(), old, torch.ones(len(old)), 3e-4, 4e-4,
                         log_ratio=log_ratio.detach())
    # A = 1: the loss is -min(ratio, 1 + eps_high), the sequence's ratio on each of its tokens.
    close(out["loss"], [-min(math.exp(v), 1 + 4e-4) for v in ref])


def test_overlong_penalty():
    lengths = torch.tensor([2, 12, 16, 18, 20, 25])
    got = rl.overlong_penalty(lengths, max_length=20, buffer=8, penalty=0.5)
    ref = [0.0 if n <= 12 else -0.5 * min((n - 12) / 8, 1.0) for n in lengths.tolist()]
    close(got, ref)
    assert rl.overlong_penalty(lengths, 20, 0).abs().sum() == 0

"""Each option that selects a peer's convention (verl, TRL) computes that peer's formula, written
here from the formula on fixed tensors (docs/ppo.md#coming-from-verl-trl)."""

import re

import pytest
import torch

from rlcore.config import experiment_config
from rlcore.sdk import (
    ADVANTAGES,
    INPUT_IDS,
    KL_COEF,
    LOGPROBS,
    NO_EOS,
    PROMPT_MASK,
    REF_LOGPROBS,
    REWARDS,
    VALUES,
    ConfigError,
    PackedBatch,
)
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.advantages import AdvantageInterface
from rlcore_plugin_algorithms.rl_config import (
    AdvantageOptions,
    KLOptions,
    PolicyOptions,
    RewardOptions,
)
from rlcore_plugin_algorithms.sampling import action_mask

TOL = {"rtol": 1e-6, "atol": 1e-6}
CU = torch.tensor([0, 3, 4, 8])  # responses of 3, 1 and 4 tokens
OLD = torch.tensor([-1.2, -0.3, -2.0, -0.7, -1.5, -0.1, -3.0, -0.9])
LOGP = OLD + torch.tensor([0.05, -0.1, 0.3, 0.0, -0.25, 0.12, 0.4, -0.02])
REF = OLD + torch.tensor([0.2, -0.4, 1.0, 0.1, -30.0, 0.5, 25.0, 0.0])  # two far from the policy
ADV = torch.tensor([1.0, 1.0, 1.0, -0.5, 2.0, 2.0, 2.0, 2.0])


def close(got, ref):
    torch.testing.assert_close(got, ref, **TOL)


def leaf(x):
    return x.clone().requires_grad_()


def grad_of(fn, x):
    x = leaf(x)
    fn(x).sum().backward()
    return x.grad


def test_k3_clamp_is_verls():
    def verl(logp):
        kl = (REF - logp).clamp(-20, 20)
        return (torch.exp(kl) - kl - 1).clamp(-10, 10)

    def ours(logp):
        return rl.kl_penalty(logp, REF, "k3", k3_clamp=10.0)

    close(ours(LOGP), verl(LOGP))
    close(grad_of(ours, LOGP), grad_of(verl, LOGP))
    assert rl.kl_penalty(LOGP, REF, "k3").max() > 10  # unclamped by default


def test_log_ratio_clamp_default_keeps_gradients_finite_and_is_verls():
    huge = OLD + torch.tensor([100.0, 0.1, -100.0, 0.0, 95.0, 0.0, 0.0, -0.1])
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 1.0])

    def ours(logp, clamp):
        lr = rl.policy_log_ratio(logp, OLD, CU, "token", clamp)
        return rl.policy_loss(logp, OLD, adv, 0.2, 0.2, log_ratio=lr)["loss"]

    def verl(logp):
        ratio = torch.exp((logp - OLD).clamp(-20.0, 20.0))
        return torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))

    assert torch.isnan(grad_of(lambda x: ours(x, None), huge)).any()  # the defect, unclamped
    grad = grad_of(lambda x: ours(x, PolicyOptions().log_ratio_clamp), huge)
    assert torch.isfinite(grad).all()
    close(ours(huge, 20.0), verl(huge))
    close(grad, grad_of(verl, huge))


def test_dual_clip_is_verls_clip_ratio_c():
    logp = OLD + torch.tensor([1.5, 0.0, 2.0, 1.6, 0.0, 0.0, 0.0, 0.0])
    adv = torch.tensor([-1.0, 1.0, 1.0, -2.0, 1.0, 1.0, 1.0, 1.0])

    def verl(x):
        ratio = torch.exp(x - OLD)
        clip1 = torch.maximum(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
        return torch.where(adv < 0, torch.minimum(-adv * 3.0, clip1), clip1)

    def ours(x):
        return rl.policy_loss(x, OLD, adv, 0.2, 0.2, dual_clip=3.0)["loss"]

    close(ours(logp), verl(logp))
    close(grad_of(ours, logp), grad_of(verl, logp))
    assert PolicyOptions().dual_clip == 3.0  # verl's default, rlcore's since issue 23


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_early_stop_kl_estimators(kind):
    lr = LOGP - OLD
    ref = {"k1": OLD - LOGP,  # verl's ppo_kl: mean(old_log_prob - log_prob)
           "k2": 0.5 * (LOGP - OLD) ** 2,
           "k3": torch.exp(LOGP - OLD) - (LOGP - OLD) - 1}[kind]
    close(rl.approx_kl(lr, kind), ref)
    out = rl.policy_loss(LOGP, OLD, ADV, 0.2, 0.2, kl_kind=kind)
    close(out["approx_kl"], ref)


def _rows(x):
    return [x[s:e] for s, e in zip(CU[:-1].tolist(), CU[1:].tolist(), strict=True)]


def test_gspo_with_seq_mean_token_mean_is_verls_gspo_loss():
    def verl(logp):
        losses = []
        for lp, old, adv in zip(_rows(logp), _rows(OLD), _rows(ADV), strict=True):
            seq = (lp - old).detach().mean()
            s = torch.exp(lp - lp.detach() + seq)
            per_token = torch.maximum(-adv * s, -adv * s.clamp(1 - 3e-4, 1 + 4e-4))
            losses.append(per_token.mean())
        return torch.stack(losses).mean()

    def ours(logp):
        lr = rl.policy_log_ratio(logp, OLD, CU, "sequence")
        loss = rl.policy_loss(logp, OLD, ADV, 3e-4, 4e-4, log_ratio=lr)["loss"]
        return rl.aggregate(loss, CU, "seq-mean-token-mean")

    close(ours(LOGP), verl(LOGP))
    close(grad_of(ours, LOGP), grad_of(verl, LOGP))


def test_dr_grpo_norm_mean_false_is_verls_constant():
    per_token = LOGP * ADV
    verl = sum(r.sum() for r in _rows(per_token)) / 6  # sum(seq sums) / loss_scale_factor
    ours = rl.aggregate(per_token, CU, "seq-mean-token-sum-norm", norm=6, norm_mean=False)
    close(ours, verl)
    rlcore = rl.aggregate(per_token, CU, "seq-mean-token-sum-norm", norm=6)
    close(ours, 3 * rlcore)  # B = 3 responses


def test_controller_input_seq_sum_and_verls_token_mean():
    kl = LOGP - REF
    total, count = rl.controller_kl(kl, CU, "seq-sum")
    assert count == 3
    close(torch.tensor(total / count), torch.stack([r.sum() for r in _rows(kl)]).mean())
    total, count = rl.controller_kl(kl, CU, "token-mean")
    close(torch.tensor(total / count), torch.stack([r.mean() for r in _rows(kl)]).mean())


def test_bessel_corrected_whitening_is_verls_masked_whiten():
    x = torch.tensor([0.3, -1.2, 2.5, 0.0, 0.7])
    mean, var = rl.moments_to_stats(*rl.moments(x), unbiased=True)
    verl = (x - x.mean()) * torch.rsqrt(x.var(unbiased=True) + 1e-8)
    close(rl.whiten(x, stats=(mean, var)), verl)
    _, biased = rl.moments_to_stats(*rl.moments(x))
    assert abs(biased - float(x.var(unbiased=False))) < 1e-6


def test_bias_correction_kl_is_trls():
    ref = REF.clamp(-5, 0)  # within k3's exponent clamp (+-20, as verl; TRL has none)

    def trl(logp):
        d = ref - logp
        return (torch.exp(d) - d - 1) * torch.exp(logp - OLD)

    def ours(logp):
        return rl.kl_loss_term(logp, ref, "k3", log_ratio=rl.policy_log_ratio(logp, OLD, CU))

    close(ours(LOGP), trl(LOGP))
    close(grad_of(ours, LOGP), grad_of(trl, LOGP))
    close(rl.kl_loss_term(LOGP, REF, "k3"), rl.kl_penalty(LOGP, REF, "k3"))  # off: plain k3


# ------------------------------------------------------------ the advantage node's options
# Two prompts x two responses; each sequence is 2 prompt tokens and 3, 2, 4, 1 response tokens.
RESPONSES = [3, 2, 4, 1]


def _node_batch(no_eos):
    gen = torch.Generator().manual_seed(0)
    seqs = {k: [[], []] for k in (INPUT_IDS, PROMPT_MASK, LOGPROBS, REF_LOGPROBS, VALUES,
                                  REWARDS, NO_EOS)}
    for i, n in enumerate(RESPONSES):
        s, length = i // 2, 2 + n
        seqs[INPUT_IDS][s].append(list(range(5, 5 + length)))
        seqs[PROMPT_MASK][s].append([True, True] + [False] * n)
        for key in (LOGPROBS, REF_LOGPROBS, VALUES):
            seqs[key][s].append((-torch.rand(length, generator=gen)).tolist())
        seqs[REWARDS][s].append([float(i % 3) - 0.5])
        seqs[NO_EOS][s].append([no_eos[i]])
    return PackedBatch.from_sequences(["a", "b"], seqs)


def _actions(batch, key):
    act = action_mask(batch.data[PROMPT_MASK], batch.cu_seqlens(INPUT_IDS))
    x, out, start = batch.data[key][act], [], 0
    for n in RESPONSES:
        out.append(x[start:start + n])
        start += n
    return out


def _run_node(batch, adv, kl):
    node = AdvantageInterface(adv, kl, RewardOptions(), max_new_tokens=4)
    out, _ = node.inference(None, batch)
    batch.update(out)
    return _actions(batch, ADVANTAGES), float(batch.data[KL_COEF][0])


@pytest.mark.parametrize("in_reward", [False, True])
def test_kl_placement_for_group_estimators(in_reward):
    batch = _node_batch([False] * 4)
    kl_sums = [(lp - rf).sum() for lp, rf in zip(_actions(batch, LOGPROBS),
                                                  _actions(batch, REF_LOGPROBS), strict=True)]
    rewards = batch.data[REWARDS]
    adv, coef = _run_node(batch, AdvantageOptions(estimator="grpo", norm=False),
                          KLOptions(coef=0.1, in_reward=in_reward, estimator="k1"))
    # verl (use_kl_in_reward): the score is the sum of r_t - beta * kl_t over the response
    scores = torch.stack([r - 0.1 * k if in_reward else r for r, k in
                          zip(rewards, kl_sums, strict=True)])
    for g in (0, 2):
        group = scores[g:g + 2]
        ref = (group - group.mean()) / (group.std() + 1e-6)
        for i in (0, 1):
            close(adv[g + i], torch.full((RESPONSES[g + i],), float(ref[i])))
    assert coef == (0.0 if in_reward else pytest.approx(0.1))  # else a loss term


@pytest.mark.parametrize("bootstrap", [True, False])
def test_truncated_responses_bootstrap_or_end_terminal(bootstrap):
    batch = _node_batch([True, False, True, False])
    values, rewards = _actions(batch, VALUES), batch.data[REWARDS]
    cu = batch.cu_seqlens("packed_input_ids")
    after = batch.data[VALUES][cu[1:].long() - 1]  # V after each response's last token
    adv, _ = _run_node(batch, AdvantageOptions(estimator="gae", norm=False,
                                               bootstrap_truncated=bootstrap), KLOptions(coef=0))
    for i, (v, r) in enumerate(zip(values, rewards, strict=True)):
        # gamma = lambda = 1: A_t = R (+ V_last when cut and bootstrapped) - V_t; verl, TRL: no V
        tail = float(after[i]) if bootstrap and i in (0, 2) else 0.0
        close(adv[i], r + tail - v)


@pytest.mark.parametrize("name, sets, message", [
    ("grpo", ["kl.k3_clamp=10", "kl.estimator=k1"], "kl.k3_clamp=10.0 clamps the k3 estimate, "
     "but kl.estimator=k1; set kl.estimator=k3 or kl.k3_clamp=null"),
    ("ppo", ["kl.bias_correction=true"], "kl.bias_correction weights the KL loss term, but "
     "kl.in_reward=true puts the KL in the reward; set kl.in_reward=false"),
])
def test_options_the_run_would_ignore_are_refused(name, sets, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        experiment_config(name, sets=sets)

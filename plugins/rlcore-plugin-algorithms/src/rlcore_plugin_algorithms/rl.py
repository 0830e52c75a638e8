"""PPO-family RL math over compact packed per-action tensors.

Each of B sequences has its action values packed flat in one ``[N]`` tensor; ``cu`` ``[B+1]`` holds
the offsets. Formulas follow Schulman et al. (PPO, GAE), Ziegler et al. 2019 and TRL/verl; the
off-policy corrections TIS (Yao et al. 2025), IcePop (Ling team 2025) and decoupled PPO.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rlcore_plugin_algorithms.packed import per_sequence_sum

KL_KINDS = ("k1", "k2", "k3")
AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def _lengths(cu: torch.Tensor) -> torch.Tensor:
    return (cu[1:] - cu[:-1]).long()


def padded(
    x: torch.Tensor, cu: torch.Tensor, fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` ``[N]`` as ``[B, Lmax]`` right-padded with ``fill``, and the mask of real entries."""
    lengths = _lengths(cu).to(x.device)
    width = int(lengths.max()) if lengths.numel() else 0
    mask = torch.arange(width, device=x.device) < lengths.unsqueeze(1)
    out = x.new_full((lengths.numel(), width), fill)
    out[mask] = x
    return out, mask


def unpadded(xp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`padded`: the masked entries of ``xp`` flat ``[N]``."""
    return xp[mask]


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    cu: torch.Tensor,
    gamma: float,
    lam: float,
    last_values: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation per sequence: ``(advantages, returns)``, both ``[N]``.

    ``last_values`` ``[B]`` bootstraps V after each sequence's last action (None: terminal, 0).
    """
    rp, mask = padded(rewards.float(), cu)
    vp, _ = padded(values.float(), cu)
    batch, width = vp.shape
    if last_values is None:
        last_values = vp.new_zeros(batch)
    lengths = mask.sum(1)
    is_last = torch.arange(width, device=vp.device) == (lengths - 1).unsqueeze(1)
    shifted = torch.cat([vp[:, 1:], vp.new_zeros(batch, min(width, 1))], dim=1)
    next_v = torch.where(is_last, last_values.float().to(vp.device).unsqueeze(1), shifted)
    deltas = (rp + gamma * next_v - vp) * mask
    advantage = vp.new_zeros(batch)
    steps = []
    for t in reversed(range(width)):
        advantage = deltas[:, t] + gamma * lam * advantage
        steps.append(advantage)
    advantages = unpadded(torch.stack(steps[::-1], dim=1), mask) if steps else rp.new_zeros(0)
    return advantages, advantages + values.float()


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str,
               k3_clamp: float | None = None) -> torch.Tensor:
    """Per-token estimate of KL(policy || reference): ``k1``, ``k2`` or ``k3`` (Schulman);
    ``k3_clamp`` clamps k3 to ``[-k3_clamp, k3_clamp]`` (verl: 10)."""
    log_ratio = logp.float() - ref_logp.float()
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        neg = (-log_ratio).clamp(-20.0, 20.0)
        k3 = torch.exp(neg) - neg - 1
        return k3 if k3_clamp is None else k3.clamp(-k3_clamp, k3_clamp)
    raise ValueError(f"unknown KL kind {kind!r}; use one of {KL_KINDS}")


def kl_loss_term(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str,
                 k3_clamp: float | None = None,
                 log_ratio: torch.Tensor | None = None) -> torch.Tensor:
    """The per-token KL loss term; with ``log_ratio`` (to the sampling policy) it is weighted by
    the importance ratio ``exp(log_ratio)``, gradient included (TRL's use_bias_correction_kl)."""
    kl = kl_penalty(logp, ref_logp, kind, k3_clamp)
    return kl if log_ratio is None else kl * torch.exp(log_ratio)


def approx_kl(log_ratio: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token estimate of KL(old || current) from ``log_ratio = logp - logp_old``: k1 is
    ``-log_ratio`` (verl's ppo_kl), k2 ``log_ratio² / 2``, k3 ``e^log_ratio - log_ratio - 1``."""
    return kl_penalty(-log_ratio.detach(), torch.zeros_like(log_ratio), kind)


def controller_kl(kl: torch.Tensor, cu: torch.Tensor, mode: str) -> tuple[float, float]:
    """``(sum over sequences, count)`` of what the adaptive KL controller reads, per sequence:
    ``seq-sum`` the sum of ``kl`` over its tokens, ``token-mean`` their mean (verl)."""
    lengths = _lengths(cu).to(kl.device)
    per_seq = per_sequence_sum(kl.detach().double(), cu.to(kl.device))
    if mode == "token-mean":
        per_seq = per_seq / lengths.clamp(min=1)
    elif mode != "seq-sum":
        raise ValueError(f"unknown controller input {mode!r}; use 'seq-sum' or 'token-mean'")
    return float(per_seq.sum()), float(lengths.numel())


def token_rewards(
    seq_rewards: torch.Tensor, cu: torch.Tensor, kl: torch.Tensor | None, kl_coef: float
) -> torch.Tensor:
    """``-kl_coef * kl`` on every action plus each sequence's reward on its last action: ``[N]``."""
    if bool((_lengths(cu) <= 0).any()):
        raise ValueError("token_rewards needs at least one action per sequence")
    if kl is None:
        out = torch.zeros(int(cu[-1]), dtype=torch.float32, device=seq_rewards.device)
    else:
        out = -kl_coef * kl.float()
    return out.index_add(0, cu[1:].long().to(out.device) - 1, seq_rewards.float().to(out.device))


def moments(x: torch.Tensor) -> tuple[float, float, int]:
    """``(sum, sum of squares, count)`` of ``x`` (accumulated in float64), ready to all-reduce."""
    xd = x.detach().double()
    return float(xd.sum()), float((xd * xd).sum()), x.numel()


def moments_to_stats(total: float, total_sq: float, count: int,
                     unbiased: bool = False) -> tuple[float, float]:
    """``(mean, variance)`` from :func:`moments` (summed over ranks): biased, or
    Bessel-corrected (``n / (n - 1)``, as verl and TRL whiten) with ``unbiased``."""
    if count <= 0:
        raise ValueError("moments_to_stats needs count > 0")
    mean = total / count
    var = max(total_sq / count - mean * mean, 0.0)
    return mean, var * count / (count - 1) if unbiased and count > 1 else var


def whiten(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    shift_mean: bool = True,
    eps: float = 1e-8,
    stats: tuple[float, float] | None = None,
) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` with moments over ``x[mask]`` (or all of x, or ``stats``).

    Every element is transformed; ``shift_mean=False`` adds the mean back.
    """
    x = x.float()
    if stats is not None:
        mean, var = stats
    else:
        selected = x if mask is None else x[mask.bool()]
        mean, var = selected.mean(), selected.var(unbiased=False)
    out = (x - mean) / torch.sqrt(torch.as_tensor(var, dtype=x.dtype, device=x.device) + eps)
    return out if shift_mean else out + mean


def sequence_log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, cu: torch.Tensor) -> torch.Tensor:
    """GSPO's per-token log-ratio ``[N]``: its value is the sequence's mean log-ratio
    (length-normalised sequence likelihood ratio), its gradient that of each token's ``logp``."""
    log_ratio = logp.float() - old_logp.float()
    lengths = _lengths(cu).to(log_ratio.device)
    seq_mean = per_sequence_sum(log_ratio.detach(), cu.to(log_ratio.device)) / lengths.clamp(min=1)
    per_token = torch.repeat_interleave(seq_mean, lengths)
    # zero-valued gradient carrier first, so the value is exactly the mean (not rounded twice)
    return logp.float() - logp.float().detach() + per_token


def policy_log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, cu: torch.Tensor,
                     level: str = "token", clamp: float | None = 20.0) -> torch.Tensor:
    """The log-ratio the policy loss exponentiates, per token or per sequence (GSPO), clamped to
    ``[-clamp, clamp]`` (verl: 20; unclamped, a ratio above e^88 is inf: NaN gradients)."""
    if level == "sequence":
        log_ratio = sequence_log_ratio(logp, old_logp, cu)
    elif level == "token":
        log_ratio = logp.float() - old_logp.float()
    else:
        raise ValueError(f"unknown ratio level {level!r}; use 'token' or 'sequence'")
    return log_ratio if clamp is None else log_ratio.clamp(-clamp, clamp)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    eps_clip_low: float,
    eps_clip_high: float,
    dual_clip: float | None = None,
    log_ratio: torch.Tensor | None = None,
    kl_kind: str = "k2",
) -> dict[str, torch.Tensor]:
    """Per-token PPO clipped surrogate loss, optionally dual-clipped (Ye et al. 2020) for A < 0.

    ``clipped`` marks tokens where the clipped term won (clip-fraction numerator).
    ``log_ratio`` replaces ``logp - old_logp`` (:func:`policy_log_ratio`); ``approx_kl`` is
    its :func:`approx_kl` of ``kl_kind``.
    """
    if log_ratio is None:
        log_ratio = logp.float() - old_logp.float()
    ratio = torch.exp(log_ratio)
    adv = advantages.float()
    surr = -adv * ratio
    surr_clipped = -adv * ratio.clamp(1 - eps_clip_low, 1 + eps_clip_high)
    loss = torch.maximum(surr, surr_clipped)
    if dual_clip is not None:
        if dual_clip <= 1:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual_clip), loss)
    return {
        "loss": loss,
        "ratio": ratio.detach(),
        "clipped": surr_clipped > surr,
        "approx_kl": approx_kl(log_ratio, kl_kind),
    }


# ---------------------------------------------------------------------- off-policy correction
# The sampler's (behaviour) log-probs ``behav`` and the trainer's at the step's start (proximal)
# ``prox`` differ when another engine, precision or weight version sampled. A correction takes
# the policy loss's ratio against ``prox`` and weighs each token's loss by a detached ``c_t``:
#     loss_t = c_t * max(-A_t * rho_t, -A_t * clip(rho_t, 1 - eps_low, 1 + eps_high)),
#     rho_t = exp(logp_t - prox_t),  c_t = f(w_t),  w_t = exp(prox_t - behav_t).

CORRECTIONS = ("none", "tis", "icepop", "decoupled")


def behaviour_ratio(prox: torch.Tensor, behav: torch.Tensor) -> torch.Tensor:
    """``w = exp(prox - behav)`` per token, detached (the log-ratio clamped to +-20)."""
    return torch.exp((prox.float() - behav.float()).clamp(-20.0, 20.0)).detach()


def tis_weights(w: torch.Tensor, cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated IS (Yao et al. 2025): weight ``min(w, cap)``; no token is dropped."""
    return w.clamp(max=cap), torch.zeros_like(w, dtype=torch.bool)


def icepop_weights(w: torch.Tensor, low: float, high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """IcePop (Ling team 2025): weight ``w`` inside ``[low, high]``, 0 outside (dropped)."""
    dropped = (w < low) | (w > high)
    return torch.where(dropped, torch.zeros_like(w), w), dropped


def decoupled_weights(w: torch.Tensor, cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoupled PPO's behaviour weight (Hilton et al. 2021, as AReaL caps it): ``w`` up to
    ``cap``; tokens above it weigh 0 (dropped)."""
    dropped = w > cap
    return torch.where(dropped, torch.zeros_like(w), w), dropped


def correction_weights(prox: torch.Tensor, behav: torch.Tensor,
                       options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight ``[N]`` on each token's policy loss for ``options.correction`` (the
    ``rollout`` section), and the tokens it drops (bool ``[N]``)."""
    w = behaviour_ratio(prox, behav)
    kind = options.correction
    if kind == "tis":
        return tis_weights(w, options.is_cap)
    if kind == "icepop":
        return icepop_weights(w, options.mask_low, options.mask_high)
    if kind == "decoupled":
        return decoupled_weights(w, options.is_cap)
    raise ValueError(f"no weights for correction {kind!r}; use one of {CORRECTIONS[1:]}")


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, eps_clip: float | None
) -> dict[str, torch.Tensor]:
    """Per-token ``0.5 * (v - R)^2``, PPO-clipped around ``old_values`` when ``eps_clip > 0``."""
    v, ret = values.float(), returns.float()
    unclipped = (v - ret) ** 2
    if eps_clip is None or eps_clip <= 0:
        return {"loss": 0.5 * unclipped, "clipped": torch.zeros_like(unclipped, dtype=torch.bool)}
    old = old_values.float()
    # in range the clipped value is v itself: old + (v - old) need not round back to v
    step = v - old
    v_clipped = torch.where(step.abs() <= eps_clip, v, old + step.clamp(-eps_clip, eps_clip))
    clipped = (v_clipped - ret) ** 2
    return {"loss": 0.5 * torch.maximum(unclipped, clipped), "clipped": clipped > unclipped}


def aggregate(per_token: torch.Tensor, cu: torch.Tensor, mode: str,
              norm: float | None = None, norm_mean: bool = True) -> torch.Tensor:
    """Reduce a per-token loss ``[N]`` to a scalar; seq-mean modes skip empty sequences.

    ``seq-mean-token-sum-norm`` (Dr. GRPO) divides each sequence's sum by the constant
    ``norm`` (the generation budget) instead of its own length, then averages over sequences
    (``norm_mean=False``: sums them, as verl: B times larger).
    """
    x = per_token.float()
    if mode == "token-mean":
        return x.sum() / max(x.numel(), 1)
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {mode!r}; use one of {AGGREGATIONS}")
    lengths = _lengths(cu).to(x.device)
    per_seq = per_sequence_sum(x, cu.to(x.device))
    if mode == "seq-mean-token-mean":
        per_seq = per_seq / lengths.clamp(min=1)
    if mode == "seq-mean-token-sum-norm":
        if not norm or norm <= 0:
            raise ValueError("seq-mean-token-sum-norm needs norm > 0 (the max response length)")
        per_seq = per_seq / norm
        if not norm_mean:
            return per_seq.sum()
    nonempty = lengths > 0
    return (per_seq * nonempty).sum() / nonempty.sum().clamp(min=1)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """``1 - Var[returns - values] / Var[returns]``; 0.0 when undefined."""
    if returns.numel() < 2:
        return 0.0
    ret = returns.detach().double()
    var_ret = float(ret.var(unbiased=False))
    if var_ret == 0:
        return 0.0
    return 1.0 - float((ret - values.detach().double()).var(unbiased=False)) / var_ret


class KLController:
    """A KL coefficient ``value``; subclasses adapt it in :meth:`update`."""

    def __init__(self, value: float):
        self.value = float(value)

    def update(self, current_kl: float, n_steps: int) -> None:
        """Nothing to adapt."""

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, d: dict) -> None:
        self.value = float(d["value"])


class FixedKLController(KLController):
    """A constant KL coefficient."""


class AdaptiveKLController(KLController):
    """Ziegler et al. 2019: move the coefficient so the measured KL tracks ``target``."""

    def __init__(self, init: float, target: float, horizon: float):
        if target <= 0 or horizon <= 0:
            raise ValueError(f"target and horizon must be > 0, got {target} and {horizon}")
        super().__init__(init)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> None:
        """``value *= 1 + clip(kl / target - 1, -0.2, 0.2) * n_steps / horizon``."""
        err = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + err * n_steps / self.horizon


def kl_controller(kind: str, init: float, target: float, horizon: float) -> KLController:
    """``fixed`` (ignores target and horizon) or ``adaptive`` KL coefficient controller."""
    if kind == "fixed":
        return FixedKLController(init)
    if kind == "adaptive":
        return AdaptiveKLController(init, target, horizon)
    raise ValueError(f"unknown KL controller {kind!r}; use 'fixed' or 'adaptive'")


class RunningMoments:
    """Running mean/variance for value normalisation: exponential (``ema``) or exact (``ma``)."""

    def __init__(self, kind: str = "ema", beta: float = 0.99):
        if kind not in ("ema", "ma"):
            raise ValueError(f"unknown RunningMoments kind {kind!r}; use 'ema' or 'ma'")
        self.kind = kind
        self.beta = float(beta)
        self._mean, self._var, self.count = 0.0, 1.0, 0

    @property
    def mean(self) -> float:
        return self._mean

    @property
    def std(self) -> float:
        return math.sqrt(self._var + 1e-8)

    def update(self, x: torch.Tensor) -> None:
        """Fold in a batch (biased batch moments)."""
        self.update_from_moments(*moments(x))

    def update_from_moments(self, total: float, total_sq: float, count: int) -> None:
        """Fold in already-reduced :func:`moments` (e.g. all-reduced over data-parallel ranks)."""
        if count <= 0:
            return
        mean, var = moments_to_stats(total, total_sq, count)
        if self.count == 0:
            self._mean, self._var = mean, var
        elif self.kind == "ema":
            self._mean = self.beta * self._mean + (1 - self.beta) * mean
            self._var = self.beta * self._var + (1 - self.beta) * var
        else:
            seen = self.count + count
            delta = mean - self._mean
            m2 = self._var * self.count + var * count + delta * delta * self.count * count / seen
            self._mean += delta * count / seen
            self._var = m2 / seen
        self.count += count

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self._mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.std + self._mean

    def state_dict(self) -> dict:
        return {"mean": self._mean, "var": self._var, "count": self.count}

    def load_state_dict(self, d: dict) -> None:
        self._mean, self._var, self.count = float(d["mean"]), float(d["var"]), int(d["count"])


# ---------------------------------------------------------------------- critic-free estimators


def group_offsets(group_sizes: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Offsets ``[G+1]`` of groups of consecutive sequences (the responses to one prompt)."""
    sizes = torch.tensor(group_sizes, dtype=torch.long, device=device)
    return torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])


# Group statistics are taken in float64: float32 scores sum exactly there, so a group of
# equal rewards gets exactly 0 (in float32, rounding noise over std + eps was up to |A| = 0.1).


def _group_mean(scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    sizes = _lengths(groups).to(scores.device)
    return torch.repeat_interleave(per_sequence_sum(scores, groups.to(scores.device)) / sizes, sizes)


def grpo_advantages(scores: torch.Tensor, groups: torch.Tensor, std_norm: bool = True,
                    eps: float = 1e-6) -> torch.Tensor:
    """GRPO: each response's score minus its group's mean, over the group's std (unbiased, as
    in the paper and TRL) unless ``std_norm`` is off (Dr. GRPO). ``[S]`` per sequence."""
    x = scores.double()
    centred = x - _group_mean(x, groups)
    if not std_norm:
        return centred.float()
    sizes = _lengths(groups).to(x.device)
    var = per_sequence_sum(centred**2, groups.to(x.device)) / (sizes - 1).clamp(min=1)
    return (centred / (torch.repeat_interleave(var.sqrt(), sizes) + eps)).float()


def rloo_advantages(scores: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """RLOO: each response's score minus the mean of the *other* responses to its prompt."""
    x = scores.double()
    sizes = _lengths(groups).to(x.device)
    if bool((sizes < 2).any()):
        raise ValueError("RLOO needs at least 2 responses per prompt (gen.n_samples >= 2)")
    totals = torch.repeat_interleave(per_sequence_sum(x, groups.to(x.device)), sizes)
    others = (totals - x) / torch.repeat_interleave(sizes - 1, sizes)
    return (x - others).float()


def remax_advantages(scores: torch.Tensor, baselines: torch.Tensor,
                     groups: torch.Tensor) -> torch.Tensor:
    """ReMax: each response's score minus its prompt's greedy response score ``[G]``."""
    sizes = _lengths(groups).to(scores.device)
    return scores.float() - torch.repeat_interleave(baselines.float().to(scores.device), sizes)


def reward_to_go(rewards: torch.Tensor, cu: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Discounted returns ``[N]`` of per-token rewards within each sequence (REINFORCE++)."""
    zeros = torch.zeros_like(rewards, dtype=torch.float32)
    returns, _ = gae(rewards, zeros, cu, gamma, 1.0)
    return returns


def overlong_penalty(lengths: torch.Tensor, max_length: int, buffer: int,
                     penalty: float = 1.0) -> torch.Tensor:
    """DAPO's soft overlong punishment: 0 up to ``max_length - buffer`` tokens, then linear
    down to ``-penalty`` at ``max_length`` (and beyond)."""
    if buffer <= 0:
        return torch.zeros_like(lengths, dtype=torch.float32)
    over = (lengths.float() - (max_length - buffer)).clamp(min=0) / buffer
    return -penalty * over.clamp(max=1.0)

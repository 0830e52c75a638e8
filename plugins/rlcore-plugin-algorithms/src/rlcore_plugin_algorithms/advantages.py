"""The advantage node: rewards, values and reference log-probs become advantages and returns,
once per step, on a role without a model. It owns the one KL controller of the run.

Its outputs (per token, 0 off the actions) feed the policy's and the critic's train steps,
with ``kl_coef``: the coefficient of the KL loss term this step (0 when the KL shapes the
reward instead). Metrics whose name starts with ``/`` are step-level (``/reward/mean``).
"""

from __future__ import annotations

from typing import Any

import torch

from rlcore.sdk import (
    ADVANTAGES,
    BASELINE_REWARDS,
    INPUT_IDS,
    KL_COEF,
    LOGPROBS,
    NO_EOS,
    PROMPT_MASK,
    REF_LOGPROBS,
    RETURNS,
    REWARDS,
    TURN_REWARDS,
    VALUES,
    AdvantageInputs,
    ModelHandle,
    ModelInterface,
    PackedBatch,
    distributed,
    registry,
)
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.packed import per_sequence_batch, per_sequence_sum, per_token_batch
from rlcore_plugin_algorithms.rl_config import AdvantageOptions, KLOptions, RewardOptions
from rlcore_plugin_algorithms.sampling import action_counts, action_mask


def shaped_rewards(raw: torch.Tensor, no_eos: torch.Tensor, r: RewardOptions) -> torch.Tensor:
    """``clip(scale * (raw + no_eos_penalty * cut + bias))`` per sequence."""
    x = raw.float() + r.no_eos_penalty * no_eos.float()
    return torch.clamp(r.scale * (x + r.bias), -r.clip, r.clip)


def _global(values: list[float], op: str = "sum") -> list[float]:
    return distributed.all_reduce(values, op)


class AdvantageInterface(ModelInterface):
    """inference: ``advantages``, ``returns`` and ``kl_coef`` by the ``adv.estimator`` entry."""

    def __init__(self, adv: AdvantageOptions, kl: KLOptions, reward: RewardOptions,
                 max_new_tokens: int):
        self.adv, self.kl_options, self.reward = adv, kl, reward
        self.max_new_tokens = max_new_tokens
        self.record = registry.get("estimators", adv.estimator)
        self.estimator = self.record.load()
        self.kl = rl.kl_controller(kl.controller, kl.coef, kl.target, kl.horizon)

    @property
    def kl_in_reward(self) -> bool:
        """Whether the KL penalty shapes the reward: per token for estimators whose record says
        ``kl_in_reward``, per response (its KL sum) for the others; else it is a loss term."""
        return self.kl_options.in_reward

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> tuple[PackedBatch, dict]:
        cu = data.cu_seqlens(INPUT_IDS)
        act = action_mask(data.data[PROMPT_MASK], cu)
        cu_act = action_counts(act, cu)
        lengths = cu_act[1:] - cu_act[:-1]
        no_eos = data.data[NO_EOS].bool()
        raw = data.data[REWARDS].float()
        seq_rewards = shaped_rewards(raw, no_eos, self.reward) + rl.overlong_penalty(
            lengths, self.max_new_tokens, self.adv.overlong_buffer, self.adv.overlong_penalty)
        kl, kl_seq, kl_ctl = None, 0.0, 0.0
        coef = self.kl.value
        if REF_LOGPROBS in data.data:
            o = self.kl_options
            old, ref = data.data[LOGPROBS][act].float(), data.data[REF_LOGPROBS][act].float()
            kl = rl.kl_penalty(old, ref, o.estimator, o.k3_clamp)
            ctl = rl.controller_kl(kl if o.controller_input == "token-mean" else old - ref,
                                   cu_act, o.controller_input)
            total, ctl_total, count = _global([float((old - ref).sum()), ctl[0], ctl[1]])
            kl_seq, kl_ctl = total / max(count, 1.0), ctl_total / max(count, 1.0)
            if self.kl_in_reward and not self.record.kl_in_reward:
                seq_rewards = seq_rewards - coef * per_sequence_sum(kl, cu_act)
        inputs = AdvantageInputs(
            rewards=seq_rewards, cu=cu_act, options=self.adv,
            token_rewards=self._token_rewards(
                data, act, raw, seq_rewards, cu_act,
                kl if self.kl_in_reward and self.record.kl_in_reward else None, coef),
            groups=rl.group_offsets([len(s) for s in data.seqlens[INPUT_IDS]]),
            **self._critic_inputs(data, act, cu, no_eos), **self._baselines(data))
        adv, ret = self.estimator(inputs)
        mean, var = rl.moments_to_stats(*_global(list(rl.moments(adv))),
                                        unbiased=self.adv.whiten_unbiased)
        if self.adv.norm or self.record.whiten:
            adv = rl.whiten(adv, stats=(mean, var))
        stats = self._stats(raw, seq_rewards, lengths, no_eos, mean, var, kl is not None, kl_seq,
                            coef)
        self.kl.update(kl_ctl, int(stats.pop("n_sequences")))
        adv_full, ret_full = torch.zeros(len(act)), torch.zeros(len(act))
        adv_full[act], ret_full[act] = adv, ret
        out = per_token_batch(data, ADVANTAGES, adv_full)
        out.update(per_token_batch(data, RETURNS, ret_full))
        loss_coef = 0.0 if kl is None or self.kl_in_reward else coef
        out.update(per_sequence_batch(data, KL_COEF, torch.full((len(raw),), loss_coef)))
        return out, stats

    @staticmethod
    def _token_rewards(data: PackedBatch, act: torch.Tensor, raw: torch.Tensor,
                       shaped: torch.Tensor, cu_act: torch.Tensor, kl: torch.Tensor | None,
                       coef: float) -> torch.Tensor:
        """Each sequence's shaped reward on its last action (less ``coef * kl``); in multi-turn
        episodes each turn's reward on that turn's last action instead, and the shaping (the
        shaped minus the raw sum) on the last action."""
        if TURN_REWARDS not in data.data:
            return rl.token_rewards(shaped, cu_act, kl, coef)
        turns = data.data[TURN_REWARDS].float()[act]
        return rl.token_rewards(shaped - raw, cu_act, kl, coef) + turns

    def _critic_inputs(self, data: PackedBatch, act: torch.Tensor, cu: torch.Tensor,
                       no_eos: torch.Tensor) -> dict[str, Any]:
        if VALUES not in data.data:
            return {}
        values = data.data[VALUES].float()
        cut = no_eos & self.adv.bootstrap_truncated  # else every end is terminal (verl, TRL)
        last = torch.where(cut, values[cu[1:].long() - 1], torch.zeros(len(no_eos)))
        return {"values": values[act], "last_values": last}

    def _baselines(self, data: PackedBatch) -> dict[str, Any]:
        if BASELINE_REWARDS not in data.data:
            return {}
        raw = data.data[BASELINE_REWARDS].float()
        return {"baselines": shaped_rewards(raw, torch.zeros(len(raw), dtype=torch.bool),
                                            self.reward)}

    def _stats(self, raw: torch.Tensor, shaped: torch.Tensor, lengths: torch.Tensor,
               no_eos: torch.Tensor, mean: float, var: float, has_ref: bool, kl_seq: float,
               coef: float) -> dict[str, float]:
        raw_mean, raw_var = rl.moments_to_stats(*_global(list(rl.moments(raw))))
        len_sum, len_n, cut = _global([float(lengths.sum()), float(len(lengths)),
                                       float(no_eos.sum())])
        (len_max,) = _global([float(lengths.max())], "max")
        return {
            "/reward/mean": raw_mean, "/reward/std": raw_var ** 0.5,
            "/reward/shaped_mean": _global([float(shaped.sum())])[0] / len_n,
            "/advantages/mean": mean, "/advantages/std": var ** 0.5,
            "/response/length_mean": len_sum / len_n, "/response/length_max": len_max,
            "/response/truncated_frac": cut / len_n, "n_sequences": len_n,
            # Without a reference model there is no KL to report (not a 0).
            **({"/kl/ref": kl_seq, "/kl/coef": coef} if has_ref else {}),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"kl": self.kl.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kl.load_state_dict(state["kl"])

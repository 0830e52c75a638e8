"""PPO's model interfaces: the actor samples, scores (as the reference) and trains; the critic.

Both trainers compute the same advantages from the batch (GAE over KL-shaped rewards)
with the same KL controller state, so neither waits for the other. Metrics whose name
starts with ``/`` are step-level health (``/reward/mean``), the rest are per MFC.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from rlcore.data.batch import PackedBatch
from rlcore.errors import RlcoreError
from rlcore.models.generation import GenerationConfig
from rlcore.runtime import distributed
from rlcore.runtime.interface import ModelHandle, ModelInterface
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.config import GenerationOptions, PPOOptions, RewardOptions
from rlcore_plugin_algorithms.losses import scatter_positions
from rlcore_plugin_algorithms.rollout import (
    IDS,
    action_counts,
    action_mask,
    action_query,
    generation_seed,
    sample_responses,
)

log = logging.getLogger(__name__)
REF_LOGPROBS = "packed_ref_logprobs"


class StaleRolloutError(RlcoreError):
    """A train step got data sampled by other weights than the ones it would update."""


def _options(cls: type, value: Any) -> Any:
    return cls(**value) if isinstance(value, dict) else value


def generation_config(gen: GenerationOptions, tokenizer: Any) -> GenerationConfig:
    """The core sampler's config for ``gen``, stopping at the tokenizer's eos."""
    eos = [tokenizer.eos_token_id] if getattr(tokenizer, "eos_token_id", None) is not None else []
    return GenerationConfig(max_new_tokens=gen.max_new_tokens, min_new_tokens=gen.min_new_tokens,
                            greedy=gen.greedy, temperature=gen.temperature, top_k=gen.top_k,
                            top_p=gen.top_p, eos_token_ids=eos)


def replays_mask(gen: GenerationOptions) -> bool:
    """Whether sampling can cut tokens, so train-time log-probs must replay its logits mask."""
    cuts = not gen.greedy and (gen.top_k > 0 or gen.top_p < 1.0)
    return cuts or gen.min_new_tokens > 0


def _packed(handle: ModelHandle, data: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    return data.data[IDS].to(handle.device), data.cu_seqlens(IDS).to(handle.device)


def _per_token(data: PackedBatch, key: str, values: torch.Tensor) -> PackedBatch:
    """A batch holding ``values`` packed like ``data``'s token ids, under ``key``."""
    return PackedBatch(list(data.ids), {key: values.detach().cpu()},
                       {key: [list(s) for s in data.seqlens[IDS]]})


def _global(values: list[float], op: str = "sum") -> list[float]:
    return distributed.all_reduce(values, op)


# ---------------------------------------------------------------------- advantages


@dataclasses.dataclass
class Advantages:
    """Per-token (``[T]``, 0 off the actions) advantages and returns, plus batch statistics."""

    advantages: torch.Tensor
    returns: torch.Tensor
    stats: dict[str, float]
    kl_per_sequence: float
    n_sequences: int


def shaped_rewards(raw: torch.Tensor, no_eos: torch.Tensor, r: RewardOptions) -> torch.Tensor:
    """``clip(scale * (raw + no_eos_penalty * cut + bias))`` per sequence."""
    x = raw.float() + r.no_eos_penalty * no_eos.float()
    return torch.clamp(r.scale * (x + r.bias), -r.clip, r.clip)


GROUP_ESTIMATORS = ("grpo", "rloo", "remax")  # one advantage per response; KL in the loss
BASELINE_REWARDS = "baseline_rewards"  # remax: the greedy response's reward per prompt


def kl_in_loss(p: PPOOptions) -> bool:
    """Whether the KL to the reference is a loss term (else it shapes the per-token reward)."""
    return not p.kl_in_reward or p.adv_estimator in GROUP_ESTIMATORS


def advantages(data: PackedBatch, p: PPOOptions, reward: RewardOptions, kl_coef: float,
               max_new_tokens: int) -> Advantages:
    """Per-token advantages and returns by ``p.adv_estimator`` (see docs/ppo.md, docs/grpo.md)."""
    cu = data.cu_seqlens(IDS)
    act = action_mask(data.data["prompt_mask"], cu)
    cu_act = action_counts(act, cu)
    lengths = cu_act[1:] - cu_act[:-1]
    old = data.data["packed_logprobs"][act].float()
    no_eos = data.data["seq_no_eos_mask"].bool()
    raw = data.data["rewards"].float()
    seq_rewards = shaped_rewards(raw, no_eos, reward) + rl.overlong_penalty(
        lengths, max_new_tokens, p.overlong_buffer, p.overlong_penalty)
    kl, kl_seq = None, 0.0
    if REF_LOGPROBS in data.data:
        ref = data.data[REF_LOGPROBS][act].float()
        kl = rl.kl_penalty(old, ref, p.kl_estimator)
        total, count = _global([float((old - ref).sum()), float(len(raw))])
        kl_seq = total / max(count, 1.0)
    reward_kl = None if kl_in_loss(p) else kl
    groups = rl.group_offsets([len(s) for s in data.seqlens[IDS]])
    values_full = data.data["values"].float() if "values" in data.data else None
    if p.adv_estimator == "gae":
        last = torch.where(no_eos, values_full[cu[1:].long() - 1], torch.zeros(len(no_eos)))
        token_r = rl.token_rewards(seq_rewards, cu_act, reward_kl, kl_coef)
        adv, ret = rl.gae(token_r, values_full[act], cu_act, p.discount, p.gae_lambda, last)
    elif p.adv_estimator == "reinforce_pp":
        token_r = rl.token_rewards(seq_rewards, cu_act, reward_kl, kl_coef)
        adv = ret = rl.reward_to_go(token_r, cu_act, p.discount)
    else:
        if p.adv_estimator == "grpo":
            per_seq = rl.grpo_advantages(seq_rewards, groups, p.std_norm)
        elif p.adv_estimator == "rloo":
            per_seq = rl.rloo_advantages(seq_rewards, groups)
        else:
            baseline = shaped_rewards(data.data[BASELINE_REWARDS].float(),
                                      torch.zeros(len(groups) - 1, dtype=torch.bool), reward)
            per_seq = rl.remax_advantages(seq_rewards, baseline, groups)
        adv = ret = torch.repeat_interleave(per_seq, lengths)
    mean, var = rl.moments_to_stats(*_global(list(rl.moments(adv))))
    if p.adv_norm or p.adv_estimator == "reinforce_pp":  # REINFORCE++: global batch whitening
        adv = rl.whiten(adv, stats=(mean, var))
    raw_mean, raw_var = rl.moments_to_stats(*_global(list(rl.moments(raw))))
    len_sum, len_n, cut = _global([float(lengths.sum()), float(len(lengths)), float(no_eos.sum())])
    (len_max,) = _global([float(lengths.max())], "max")
    stats = {
        "/reward/mean": raw_mean, "/reward/std": raw_var ** 0.5,
        "/reward/shaped_mean": _global([float(seq_rewards.sum())])[0] / len_n,
        "/advantages/mean": mean, "/advantages/std": var ** 0.5,
        "/response/length_mean": len_sum / len_n, "/response/length_max": len_max,
        "/response/truncated_frac": cut / len_n,
        "/kl/ref": kl_seq, "/kl/coef": kl_coef,
    }
    full = torch.zeros(len(act))
    adv_full, ret_full = full.clone(), full.clone()
    adv_full[act], ret_full[act] = adv, ret
    return Advantages(adv_full, ret_full, stats, kl_seq, int(len_n))


# ---------------------------------------------------------------------- interfaces


class _PPOTrainer(ModelInterface):
    """State both trainers share: the options and the KL controller."""

    def __init__(self, ppo: Any, reward: Any, gen: Any = None, seed: int = 1):
        self.ppo: PPOOptions = _options(PPOOptions, ppo)
        self.reward: RewardOptions = _options(RewardOptions, reward)
        self.gen: GenerationOptions = _options(GenerationOptions, gen or {})
        self.seed = seed
        self.kl = rl.kl_controller(self.ppo.kl_controller, self.ppo.kl_ctl, self.ppo.kl_target,
                                   self.ppo.kl_horizon)
        self.updates_per_call = self.ppo.ppo_epochs * self.ppo.ppo_n_minibatches

    def aggregate(self, per_token: torch.Tensor, cu_act: torch.Tensor) -> torch.Tensor:
        return rl.aggregate(per_token, cu_act, self.ppo.loss_agg, norm=self.gen.max_new_tokens)

    def minibatches(self, data: PackedBatch) -> list[PackedBatch]:
        n = self.ppo.ppo_n_minibatches
        if len(data) < n:
            raise RlcoreError(
                f"ppo.ppo_n_minibatches={n} but this rank holds {len(data)} prompts; raise "
                f"run.batch_size to at least {n * distributed.world_size()} or lower it")
        return data.minibatches(n) if n > 1 else [data]

    def state_dict(self) -> dict[str, Any]:
        return {"kl": self.kl.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kl.load_state_dict(state["kl"])


class PPOActorInterface(_PPOTrainer):
    """generate: sample responses; inference: token log-probs (the reference); train_step: PPO."""

    def generate(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        g = generation_config(self.gen, handle.tokenizer)
        seed = generation_seed(self.seed, handle.version, distributed.rank(), data.ids)
        return sample_responses(handle, data, g, self.gen.n_samples, seed, replays_mask(self.gen))

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        """Log-probs of the response tokens under the sampling distribution (``logprobs``)."""
        ids, cu = _packed(handle, data)
        act = action_mask(data.data["prompt_mask"].to(handle.device), cu)
        g = generation_config(self.gen, handle.tokenizer)
        query = action_query(ids, act, g, data.data.get("logits_mask"))
        logp, _ = handle.model(ids, cu, query)
        return _per_token(data, "logprobs", scatter_positions(logp, query.positions, ids.numel()))

    def check_version(self, handle: ModelHandle, data: PackedBatch) -> None:
        versions = sorted(set(data.data["version"].tolist()))
        if versions != [handle.version]:
            raise StaleRolloutError(
                f"actor_train got data sampled by weight versions {versions}, but the actor is at "
                f"version {handle.version}; PPO trains on-policy, so rollouts must come from the "
                "current weights (was a generate call skipped or run on another role?)")

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        self.check_version(handle, data)
        adv = advantages(data, self.ppo, self.reward, self.kl.value, self.gen.max_new_tokens)
        data = data.select(list(data.data), metadata=False)
        data.update(_per_token(data, "advantages", adv.advantages))
        p, g = self.ppo, generation_config(self.gen, handle.tokenizer)
        sums: dict[str, list[float]] = {}
        drift = None
        stopped = False
        for _ in range(p.ppo_epochs):
            for mb in self.minibatches(data):
                ids, cu = _packed(handle, mb)
                act = action_mask(mb.data["prompt_mask"].to(handle.device), cu)
                cu_act = action_counts(act, cu)
                query = action_query(ids, act, g, mb.data.get("logits_mask"), entropy=True)
                logp, entropy = handle.model(ids, cu, query)
                old = mb.data["packed_logprobs"].to(handle.device)[act]
                if drift is None:  # the weights that sampled these tokens, not yet updated
                    drift = float((logp.detach() - old).abs().max()) if logp.numel() else 0.0
                log_ratio = rl.sequence_log_ratio(logp, old, cu_act) \
                    if p.ratio_level == "sequence" else None
                pg = rl.policy_loss(logp, old, mb.data["advantages"].to(handle.device)[act],
                                    p.clip_low, p.clip_high, p.dual_clip, log_ratio)
                per_token = pg["loss"]
                if REF_LOGPROBS in mb.data and kl_in_loss(p):
                    ref = mb.data[REF_LOGPROBS].to(handle.device)[act]
                    per_token = per_token + self.kl.value * rl.kl_penalty(logp, ref, p.kl_estimator)
                if p.entropy_coef:
                    per_token = per_token - p.entropy_coef * entropy
                loss = self.aggregate(per_token, cu_act)
                handle.model.backward(loss)
                out = handle.model.step()
                step_metrics = {
                    "loss": loss.item(),
                    "pg_loss": self.aggregate(pg["loss"].detach(), cu_act).item(),
                    "clip_frac": pg["clipped"].float().mean().item(),
                    "approx_kl": pg["approx_kl"].mean().item(),
                    "ratio_max": pg["ratio"].max().item(),
                    "entropy": entropy.detach().mean().item(),
                    **out,
                }
                for k, v in step_metrics.items():
                    sums.setdefault(k, []).append(float(v))
                if self._early_stop(step_metrics):
                    stopped = True
                    break
            if stopped:
                break
        metrics = {k: sum(v) / len(v) for k, v in sums.items()}
        metrics["ratio_max"] = max(sums["ratio_max"])
        metrics["updates"] = float(len(sums["loss"]))
        (drift,) = _global([drift or 0.0], "max")
        if drift > p.logprob_drift_warn:
            log.warning("generation and training log-probs differ by up to %.3g for the same "
                        "weights (ppo.logprob_drift_warn=%.3g): the sampler and the trainer disagree",
                        drift, p.logprob_drift_warn)
        self.kl.update(adv.kl_per_sequence, adv.n_sequences)
        return {**metrics, **adv.stats, "/gen/logprob_drift": drift}

    def _early_stop(self, m: dict[str, float]) -> bool:
        p = self.ppo
        approx_kl, ratio = _global([m["approx_kl"], m["ratio_max"]], "max")
        return ((p.early_stop_kl is not None and approx_kl > p.early_stop_kl)
                or (p.early_stop_imp_ratio is not None and ratio > p.early_stop_imp_ratio))


class PPOCriticInterface(_PPOTrainer):
    """inference: values per token (denormalised); train_step: clipped value regression."""

    def __init__(self, ppo: Any, reward: Any, gen: Any = None, seed: int = 1):
        super().__init__(ppo, reward, gen, seed)
        self.moments = rl.RunningMoments(self.ppo.value_norm_type, self.ppo.value_norm_beta)

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        ids, cu = _packed(handle, data)
        values = handle.model(ids, cu).float()
        if self.ppo.value_norm:
            values = self.moments.denormalize(values)
        return _per_token(data, "values", values)

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        p = self.ppo
        adv = advantages(data, p, self.reward, self.kl.value, self.gen.max_new_tokens)
        cu = data.cu_seqlens(IDS)
        act = action_mask(data.data["prompt_mask"], cu)
        old_values = data.data["values"].float()
        returns = adv.returns
        explained = rl.explained_variance(old_values[act], returns[act])
        if p.value_norm:
            old_values = self.moments.normalize(old_values)
            self.moments.update_from_moments(*_global(list(rl.moments(returns[act]))))
            returns = self.moments.normalize(returns)
        data = data.select([IDS, "prompt_mask"], metadata=False)
        data.update(_per_token(data, "old_values", old_values))
        data.update(_per_token(data, "returns", returns))
        sums: dict[str, list[float]] = {}
        eps = p.value_eps_clip if p.value_eps_clip > 0 else None
        for _ in range(p.ppo_epochs):
            for mb in self.minibatches(data):
                ids, mcu = _packed(handle, mb)
                mact = action_mask(mb.data["prompt_mask"].to(handle.device), mcu)
                values = handle.model(ids, mcu).float()[mact]
                vl = rl.value_loss(values, mb.data["old_values"].to(handle.device)[mact],
                                   mb.data["returns"].to(handle.device)[mact], eps)
                loss = p.value_loss_coef * self.aggregate(vl["loss"], action_counts(mact, mcu))
                handle.model.backward(loss)
                out = handle.model.step()
                for k, v in {"loss": loss.item(), "clip_frac": vl["clipped"].float().mean().item(),
                             "values_mean": values.detach().mean().item(), **out}.items():
                    sums.setdefault(k, []).append(float(v))
        self.kl.update(adv.kl_per_sequence, adv.n_sequences)
        metrics = {k: sum(v) / len(v) for k, v in sums.items()}
        return {**metrics, "explained_var": explained,
                "returns_mean": float(adv.returns[act].mean()) if act.any() else 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "moments": self.moments.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.moments.load_state_dict(state["moments"])

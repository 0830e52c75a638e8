"""The trainers of the RL experiment: the policy (a registered policy loss over the advantage
node's advantages) and the critic (clipped value regression on its returns).

The critic's inference and train steps share one object, so value normalisation de-normalises
with the statistics that training updates.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from rlcore.sdk import (
    ADVANTAGES,
    INPUT_IDS,
    KL_COEF,
    LOGPROBS,
    PROMPT_MASK,
    PROX_LOGPROBS,
    REF_LOGPROBS,
    RETURNS,
    VALUES,
    VERSION,
    KeptTokens,
    ModelHandle,
    ModelInterface,
    PackedBatch,
    PolicyLossInputs,
    RlcoreError,
    distributed,
    registry,
)
from rlcore_plugin_algorithms import rl
from rlcore_plugin_algorithms.config import MoEOptions
from rlcore_plugin_algorithms.packed import on_device, per_token_batch
from rlcore_plugin_algorithms.rl_config import (
    CriticOptions,
    GenerationOptions,
    KLOptions,
    PolicyOptions,
    RolloutOptions,
)
from rlcore_plugin_algorithms.routing import agreement, layers_of, replayed
from rlcore_plugin_algorithms.sampling import (
    action_counts,
    action_mask,
    action_query,
    generation_config,
)

log = logging.getLogger(__name__)


class StaleRolloutError(RlcoreError):
    """A train step got data sampled by other weights than the ones it would update."""


def _global(values: list[float], op: str = "sum") -> list[float]:
    return distributed.all_reduce(values, op)


class _Trainer(ModelInterface):
    """Epochs over minibatches of one step's batch, and the loss aggregation they share."""

    def __init__(self, policy: PolicyOptions, gen: GenerationOptions):
        self.policy, self.gen = policy, gen
        self.updates_per_call = policy.epochs * policy.minibatches
        self._told_short = False  # the note on a short batch's fewer minibatches, once

    def aggregate(self, per_token: torch.Tensor, cu_act: torch.Tensor) -> torch.Tensor:
        return rl.aggregate(per_token, cu_act, self.policy.loss_agg, norm=self.gen.max_new_tokens,
                            norm_mean=self.policy.norm_mean)

    def minibatches(self, data: PackedBatch) -> list[PackedBatch]:
        """``policy.minibatches`` of them, or fewer when a rank holds fewer prompts (an epoch's
        short last batch): every rank makes as many as the rank holding the fewest, so the
        ranks take the same optimizer steps."""
        n = self.policy.minibatches
        fewest = int(-_global([-float(len(data))], "max")[0])
        if fewest < 1:
            raise RlcoreError(
                f"a rank holds no prompts at this step ({len(data)} here, over "
                f"{distributed.world_size()} ranks); raise run.batch_size")
        if fewest < n:
            if distributed.rank() == 0 and not self._told_short:
                print(f"note: a batch of {fewest} prompt(s) per rank (an epoch's short last "
                      f"batch) trains as {fewest} minibatch(es), not "
                      f"{self.policy.section}.minibatches={n}", flush=True)
            self._told_short = True
            n = fewest
        return data.minibatches(n) if n > 1 else [data]


class PolicyInterface(_Trainer):
    """train_step: the ``policy.loss`` entry on the advantages, plus the KL and entropy terms.
    With ``rollout`` (a correction other than none) the ratio is against the proximal log-probs
    and each token's policy loss is weighted (:func:`rl.correction_weights`). With
    ``moe.router_replay`` the forward uses the sampler's experts (``routed_experts``)."""

    def __init__(self, policy: PolicyOptions, kl: KLOptions, gen: GenerationOptions,
                 rollout: RolloutOptions | None = None, max_staleness: int | None = None,
                 moe: MoEOptions | None = None):
        super().__init__(policy, gen)
        self.kl, self.max_staleness, self.moe = kl, max_staleness, moe or MoEOptions()
        self.step_starts: list[int] = []  # the actor's version at each train step's start
        self.rollout = rollout if rollout is not None and rollout.correction != "none" else None
        self.loss_fn = registry.load("policy_losses", policy.loss)

    def check_version(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        """Refuse data sampled more than ``max_staleness`` training steps ago (None: by other
        weights than the actor's now); with a bound, report the staleness in steps as metrics.
        A sample's version is the actor's optimizer-step count when it was sampled."""
        versions = data.data[VERSION].long()
        self.step_starts = [*self.step_starts[-64:], handle.version]
        starts = torch.tensor(self.step_starts)
        lag = (starts[None, :] > versions[:, None]).sum(1)  # steps begun since the sampling
        bound = self.max_staleness or 0
        if bool((versions > handle.version).any()) or int(lag.max()) > bound:
            raise StaleRolloutError(
                f"actor_train got data sampled by weight versions {sorted(set(versions.tolist()))}"
                f", but the actor is at version {handle.version} and rollout.max_staleness="
                f"{bound} (training steps); rollouts older than that are never trained on (was a "
                "generate call skipped, run on another role, or did a weight sync not reach the "
                "sampler?)")
        if self.max_staleness is None:
            return {}
        return {"/rollout/staleness_max": float(lag.max()),
                "/rollout/staleness_mean": float(lag.float().mean())}

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        staleness = self.check_version(handle, data)
        p = self.policy
        sums: dict[str, list[float]] = {}
        drift: float | None = None
        # the drift check compares sampler and trainer on the same weights: fresh data only
        fresh = bool((data.data[VERSION].long() == handle.version).all())
        for _ in range(p.epochs):
            for mb in self.minibatches(data):
                metrics, mb_drift = self._update(handle, mb)
                drift = mb_drift if drift is None and fresh else drift
                for k, v in metrics.items():
                    sums.setdefault(k, []).append(float(v))
                if self._early_stop(metrics):
                    break
            else:
                continue
            break
        metrics = {k: sum(v) / len(v) for k, v in sums.items()}
        metrics["ratio_max"] = max(sums["ratio_max"])
        metrics["updates"] = float(len(sums["loss"]))
        metrics.update(staleness)
        if self.rollout is not None:
            metrics.update(self.correction_metrics(data))
        if _global([float(not fresh)], "max")[0]:
            return metrics  # some rank trained on data of older weights: no drift to measure
        (drift,) = _global([drift or 0.0], "max")
        if drift > p.logprob_drift_warn:
            log.warning("generation and training log-probs differ by up to %.3g for the same "
                        "weights (%s.logprob_drift_warn=%.3g): the sampler and the trainer "
                        "disagree", drift, p.section, p.logprob_drift_warn)
        return {**metrics, "/gen/logprob_drift": drift}

    def _update(self, handle: ModelHandle, mb: PackedBatch) -> tuple[dict[str, float], float]:
        """One optimizer micro step on a minibatch: its metrics, and the largest difference
        between the sampling and the current log-probs."""
        p, dev = self.policy, handle.device
        ids, cu = on_device(handle, mb)
        act = action_mask(mb.data[PROMPT_MASK].to(dev), cu)
        cu_act = action_counts(act, cu)
        g = generation_config(self.gen, handle.tokenizer)
        query = action_query(ids, act, g, KeptTokens.from_batch(mb.data), entropy=True)
        routing = layers_of(mb, dev)
        with replayed(handle, routing, self.moe.router_replay):  # through backward: recomputation
            logp, entropy = handle.model(ids, cu, query)
            routed = agreement(handle, routing)
            behav, old, weight = self.old_logprobs(mb, act)
            drift = float((logp.detach() - behav).abs().max()) if logp.numel() else 0.0
            log_ratio = rl.policy_log_ratio(logp, old, cu_act, p.ratio_level, p.log_ratio_clamp)
            out = self.loss_fn(PolicyLossInputs(logp, old, log_ratio, mb.data[ADVANTAGES].to(dev)[act],
                                                cu_act, p))
            pg = out["loss"] if weight is None else out["loss"] * weight
            per_token = pg
            coef = float(mb.data[KL_COEF][0]) if len(mb.data[KL_COEF]) else 0.0
            if REF_LOGPROBS in mb.data and coef:
                ref = mb.data[REF_LOGPROBS].to(dev)[act]
                per_token = per_token + coef * rl.kl_loss_term(
                    logp, ref, self.kl.estimator, self.kl.k3_clamp,
                    log_ratio if self.kl.bias_correction else None)
            if p.entropy_coef:
                per_token = per_token - p.entropy_coef * entropy
            loss = self.aggregate(per_token, cu_act)
            handle.model.backward(loss)
        step = handle.model.step()
        ratio = out.get("ratio", torch.exp(log_ratio.detach()))
        clipped = out.get("clipped", torch.zeros_like(ratio, dtype=torch.bool))
        approx_kl = out.get("approx_kl", rl.approx_kl(log_ratio, p.early_stop_kl_estimator))
        return {
            "loss": loss.item(),
            "pg_loss": self.aggregate(pg.detach(), cu_act).item(),
            "clip_frac": clipped.float().mean().item(),
            "approx_kl": approx_kl.mean().item(),
            "ratio_max": ratio.max().item(),
            "entropy": entropy.detach().mean().item(),
            **routed,
            **step,
        }, drift

    def old_logprobs(self, mb: PackedBatch, act: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The actions' sampling log-probs, those the ratio is taken against (the proximal ones
        under a correction, else the same) and the correction's weights (None without one)."""
        behav = mb.data[LOGPROBS].to(act.device)[act]
        if self.rollout is None:
            return behav, behav, None
        prox = mb.data[PROX_LOGPROBS].to(act.device)[act]
        return behav, prox, rl.correction_weights(prox, behav, self.rollout)[0]

    def correction_metrics(self, data: PackedBatch) -> dict[str, float]:
        """Step-level: the mean weight over this rank's tokens and, for corrections that drop
        tokens, the share dropped (the weights depend on the step's data, not on updates)."""
        act = action_mask(data.data[PROMPT_MASK], data.cu_seqlens(INPUT_IDS))
        weight, dropped = rl.correction_weights(data.data[PROX_LOGPROBS][act],
                                                data.data[LOGPROBS][act], self.rollout)
        n = max(weight.numel(), 1)
        out = {"/rollout/is_weight_mean": float(weight.sum()) / n}
        if self.rollout.correction != "tis":
            out["/rollout/masked_frac"] = float(dropped.sum()) / n
        return out

    def _early_stop(self, m: dict[str, float]) -> bool:
        p = self.policy
        approx_kl, ratio = _global([m["approx_kl"], m["ratio_max"]], "max")
        return ((p.early_stop_kl is not None and approx_kl > p.early_stop_kl)
                or (p.early_stop_imp_ratio is not None and ratio > p.early_stop_imp_ratio))


class CriticInterface(_Trainer):
    """inference: values per token (de-normalised); train_step: clipped value regression."""

    def __init__(self, critic: CriticOptions, policy: PolicyOptions, gen: GenerationOptions):
        super().__init__(policy, gen)
        self.critic = critic
        self.moments = rl.RunningMoments(critic.norm_type, critic.norm_beta)

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        ids, cu = on_device(handle, data)
        values = handle.model(ids, cu).float()
        if self.critic.norm:
            values = self.moments.denormalize(values)
        return per_token_batch(data, "values", values)

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        c = self.critic
        act = action_mask(data.data[PROMPT_MASK], data.cu_seqlens(INPUT_IDS))
        old_values, returns = data.data[VALUES].float(), data.data[RETURNS].float()
        explained = rl.explained_variance(old_values[act], returns[act])
        returns_mean = float(returns[act].mean()) if act.any() else 0.0
        if c.norm:
            old_values = self.moments.normalize(old_values)
            self.moments.update_from_moments(*_global(list(rl.moments(returns[act]))))
            returns = self.moments.normalize(returns)
        data = data.select([INPUT_IDS, PROMPT_MASK], metadata=False)
        data.update(per_token_batch(data, "old_values", old_values))
        data.update(per_token_batch(data, "returns", returns))
        sums: dict[str, list[float]] = {}
        eps = c.eps_clip if c.eps_clip > 0 else None
        for _ in range(self.policy.epochs):
            for mb in self.minibatches(data):
                ids, mcu = on_device(handle, mb)
                mact = action_mask(mb.data[PROMPT_MASK].to(handle.device), mcu)
                values = handle.model(ids, mcu).float()[mact]
                vl = rl.value_loss(values, mb.data["old_values"].to(handle.device)[mact],
                                   mb.data["returns"].to(handle.device)[mact], eps)
                loss = c.loss_coef * self.aggregate(vl["loss"], action_counts(mact, mcu))
                handle.model.backward(loss)
                out = handle.model.step()
                for k, v in {"loss": loss.item(), "clip_frac": vl["clipped"].float().mean().item(),
                             "values_mean": values.detach().mean().item(), **out}.items():
                    sums.setdefault(k, []).append(float(v))
        metrics = {k: sum(v) / len(v) for k, v in sums.items()}
        return {**metrics, "explained_var": explained, "returns_mean": returns_mean}

    def state_dict(self) -> dict[str, Any]:
        return {"moments": self.moments.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.moments.load_state_dict(state["moments"])

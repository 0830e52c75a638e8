"""Model interfaces of the standard experiments: what each MFC does to its model."""

from __future__ import annotations

import torch

from rlcore.sdk import (
    INPUT_IDS,
    LOSS_MASK,
    REWARDS,
    ModelHandle,
    ModelInterface,
    PackedBatch,
    distributed,
)
from rlcore_plugin_algorithms import losses
from rlcore_plugin_algorithms.packed import (
    next_token_query,
    next_token_valid,
    on_device,
    per_sequence_batch,
    per_sequence_sum,
    scatter_positions,
    target_mask,
)
from rlcore_plugin_datasets.unpaired import DESIRABLE

PAIR_WEIGHT = "pair_weight"  # online DPO: each pair's weight in the loss (0: a tied prompt)


def sequence_scores(handle: ModelHandle, data: PackedBatch) -> torch.Tensor:
    """A value-head model's score of each sequence: its output at the last token."""
    ids, cu = on_device(handle, data)
    return losses.last_token_scores(handle.model(ids, cu), cu)


def answer_query(handle: ModelHandle, data: PackedBatch):
    """Token ids, cu_seqlens and the query scoring the ``loss_mask`` (answer) tokens."""
    ids, cu = on_device(handle, data)
    mask = target_mask(data.data[LOSS_MASK].to(handle.device), cu)
    return ids, cu, next_token_query(ids, mask)


def answer_logps(handle: ModelHandle, data: PackedBatch, mean: bool = False) -> torch.Tensor:
    """Sum (``mean``: per-token mean) of the log-probs of each sequence's ``loss_mask`` (answer) tokens."""
    ids, cu, query = answer_query(handle, data)
    logp, _ = handle.model(ids, cu, query)
    sums = per_sequence_sum(scatter_positions(logp, query.positions, ids.numel()), cu)
    return sums / answer_lengths(data).to(sums.device).clamp(min=1) if mean else sums


def answer_lengths(data: PackedBatch) -> torch.Tensor:
    """Tokens scored per sequence by :func:`answer_logps` (float ``[B]``)."""
    cu = data.cu_seqlens(INPUT_IDS)
    return per_sequence_sum(target_mask(data.data[LOSS_MASK], cu).float(), cu)


def _update(handle: ModelHandle, loss: torch.Tensor) -> dict[str, float]:
    handle.model.backward(loss)
    return handle.model.step()


class SFTInterface(ModelInterface):
    """Next-token cross-entropy on the tokens ``loss_mask`` marks (the answers)."""

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        ids, cu, query = answer_query(handle, data)
        loss, n_tokens = losses.sft_loss(handle.model(ids, cu, query)[0])
        return {"loss": loss.item(), "tokens": n_tokens, **_update(handle, loss)}

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        """Per-token log-probs of each next token (``logprobs``, 0 at sequence ends)."""
        ids, cu = on_device(handle, data)
        query = next_token_query(ids, next_token_valid(cu, ids.numel()))
        logp = scatter_positions(handle.model(ids, cu, query)[0], query.positions, ids.numel()).cpu()
        out = data.select([INPUT_IDS], metadata=False)
        out.data["logprobs"] = logp
        out.seqlens["logprobs"] = [list(s) for s in out.seqlens[INPUT_IDS]]
        return out.select(["logprobs"], metadata=False)


class RewardInterface(ModelInterface):
    """A value-head model scored at each sequence's last token; pairs are ``[chosen, rejected]``."""

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        scores = sequence_scores(handle, data)
        chosen, rejected = scores[0::2], scores[1::2]
        loss, accuracy = losses.bradley_terry_loss(chosen, rejected)
        metrics = {
            "loss": loss.item(),
            "accuracy": accuracy.item(),
            "margin": float((chosen - rejected).detach().mean()),
        }
        return {**metrics, **_update(handle, loss)}

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        """One score per sequence under ``rewards``."""
        return per_sequence_batch(data, REWARDS, sequence_scores(handle, data).float().cpu())


class DPOInterface(ModelInterface):
    """DPO and its relatives: answer log-probs under the policy, against the frozen reference's
    (sigmoid, ipo, kto) or alone (orpo, simpo); pairs are ``[chosen, rejected]``, kto samples
    ``[completion, mismatched completion]``."""

    def __init__(self, beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
                 gamma: float = 0.5, desirable_weight: float = 1.0, undesirable_weight: float = 1.0):
        self.beta, self.loss_type, self.label_smoothing = beta, loss_type, label_smoothing
        self.gamma, self.weights = gamma, (desirable_weight, undesirable_weight)

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        """The reference's answer log-prob sum per sequence, under ``seq_logps``."""
        return per_sequence_batch(data, "seq_logps", answer_logps(handle, data).float().cpu())

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        policy = answer_logps(handle, data)
        step = {"kto": self._kto, "orpo": self._orpo, "simpo": self._simpo}.get(self.loss_type,
                                                                                self._dpo)
        loss, metrics = step(policy, data)
        return {"loss": loss.item(), **metrics, **_update(handle, loss)}

    def _dpo(self, policy: torch.Tensor, data: PackedBatch) -> tuple[torch.Tensor, dict]:
        ref = data.data["ref_logps"].to(policy.device, policy.dtype)
        per_pair, chosen, rejected = losses.dpo_loss(
            policy[0::2], policy[1::2], ref[0::2], ref[1::2],
            self.beta, self.loss_type, self.label_smoothing,
        )
        if PAIR_WEIGHT not in data.data:
            return per_pair.mean(), pair_metrics(chosen, rejected)
        weight = data.data[PAIR_WEIGHT].to(policy.device, policy.dtype)[0::2]  # online: 0 = tie
        kept = weight > 0
        loss = (per_pair * weight).sum() / weight.sum().clamp(min=1)
        return loss, pair_metrics(chosen[kept], rejected[kept]) if kept.any() else {}

    def _simpo(self, policy: torch.Tensor, data: PackedBatch) -> tuple[torch.Tensor, dict]:
        mean = policy / answer_lengths(data).to(policy.device, policy.dtype).clamp(min=1)
        per_pair, chosen, rejected = losses.simpo_loss(mean[0::2], mean[1::2], self.beta,
                                                       self.gamma, self.label_smoothing)
        return per_pair.mean(), pair_metrics(chosen, rejected)

    def _orpo(self, policy: torch.Tensor, data: PackedBatch) -> tuple[torch.Tensor, dict]:
        n = answer_lengths(data).to(policy.device, policy.dtype).clamp(min=1)
        loss, ratio_term, chosen, rejected = losses.orpo_loss(
            policy[0::2], policy[1::2], n[0::2], n[1::2], self.beta)
        return loss, {"nll": float(loss.detach() - ratio_term.detach().mean()),
                      "odds_ratio_loss": float(ratio_term.detach().mean()),
                      **pair_metrics(chosen, rejected)}

    def _kto(self, policy: torch.Tensor, data: PackedBatch) -> tuple[torch.Tensor, dict]:
        ref = data.data["ref_logps"].to(policy.device, policy.dtype)
        desirable = data.data[DESIRABLE].to(policy.device).bool()
        z0 = losses.kto_reference_point(policy[1::2], ref[1::2], distributed.all_reduce)
        per_completion, rewards = losses.kto_loss(policy[0::2], ref[0::2], desirable, z0,
                                                  self.beta, *self.weights)
        return per_completion.mean(), {"kl": float(z0), **labelled_metrics(rewards, desirable)}


def pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    """Mean implicit rewards of chosen and rejected, their margin and how often chosen wins."""
    return {
        "rewards/chosen": float(chosen.mean()),
        "rewards/rejected": float(rejected.mean()),
        "rewards/margin": float((chosen - rejected).mean()),
        "rewards/accuracy": float((chosen > rejected).float().mean()),
    }


def labelled_metrics(rewards: torch.Tensor, desirable: torch.Tensor) -> dict[str, float]:
    """KTO's rewards by label: means (when present), their margin, and the share of completions
    whose reward has the label's sign (accuracy)."""
    out = {"rewards/accuracy": float(((rewards > 0) == desirable).float().mean())}
    if desirable.any():
        out["rewards/chosen"] = float(rewards[desirable].mean())
    if not desirable.all():
        out["rewards/rejected"] = float(rewards[~desirable].mean())
    if "rewards/chosen" in out and "rewards/rejected" in out:
        out["rewards/margin"] = out["rewards/chosen"] - out["rewards/rejected"]
    return out

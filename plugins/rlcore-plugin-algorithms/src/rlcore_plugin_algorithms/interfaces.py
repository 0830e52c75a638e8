"""Model interfaces of the standard experiments: what each MFC does to its model."""

from __future__ import annotations

import torch

from rlcore.sdk import INPUT_IDS, LOSS_MASK, REWARDS, ModelHandle, ModelInterface, PackedBatch
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


def sequence_scores(handle: ModelHandle, data: PackedBatch) -> torch.Tensor:
    """A value-head model's score of each sequence: its output at the last token."""
    ids, cu = on_device(handle, data)
    return losses.last_token_scores(handle.model(ids, cu), cu)


def answer_query(handle: ModelHandle, data: PackedBatch):
    """Token ids, cu_seqlens and the query scoring the ``loss_mask`` (answer) tokens."""
    ids, cu = on_device(handle, data)
    mask = target_mask(data.data[LOSS_MASK].to(handle.device), cu)
    return ids, cu, next_token_query(ids, mask)


def answer_logps(handle: ModelHandle, data: PackedBatch) -> torch.Tensor:
    """Sum of the log-probs of each sequence's ``loss_mask`` (answer) tokens."""
    ids, cu, query = answer_query(handle, data)
    logp, _ = handle.model(ids, cu, query)
    return per_sequence_sum(scatter_positions(logp, query.positions, ids.numel()), cu)


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
    """DPO: log-prob sums of the answers under the policy vs. under the frozen reference."""

    def __init__(self, beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0):
        self.beta, self.loss_type, self.label_smoothing = beta, loss_type, label_smoothing

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        """The reference's answer log-prob sum per sequence, under ``seq_logps``."""
        return per_sequence_batch(data, "seq_logps", answer_logps(handle, data).float().cpu())

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        policy = answer_logps(handle, data)
        ref = data.data["ref_logps"].to(policy.device, policy.dtype)
        per_pair, chosen, rejected = losses.dpo_loss(
            policy[0::2], policy[1::2], ref[0::2], ref[1::2],
            self.beta, self.loss_type, self.label_smoothing,
        )
        loss = per_pair.mean()
        metrics = {
            "loss": loss.item(),
            "rewards/chosen": float(chosen.mean()),
            "rewards/rejected": float(rejected.mean()),
            "rewards/margin": float((chosen - rejected).mean()),
            "rewards/accuracy": float((chosen > rejected).float().mean()),
        }
        return {**metrics, **_update(handle, loss)}

"""RAFTInterface: keep each prompt's best-rewarded responses and fine-tune on their tokens."""

from __future__ import annotations

from typing import Any

import torch

from rlcore.sdk import ModelHandle, ModelInterface, PackedBatch, distributed
from rlcore_plugin_algorithms.interfaces import answer_query
from rlcore_plugin_algorithms.losses import sft_loss

IDS = "packed_input_ids"


def select_best(rewards: list[list[float]], top_k: int,
                min_reward: float | None) -> list[list[int]]:
    """For each prompt's rewards, the indices of its ``top_k`` highest (ties: the earlier one),
    dropping those below ``min_reward``."""
    kept = []
    for group in rewards:
        order = sorted(range(len(group)), key=lambda j: (-group[j], j))[:top_k]
        kept.append([j for j in order if min_reward is None or group[j] >= min_reward])
    return kept


class RAFTInterface(ModelInterface):
    """train_step: next-token loss on the response tokens of the kept responses."""

    def __init__(self, top_k: int = 1, min_reward: float | None = None, epochs: int = 1,
                 n_minibatches: int = 1):
        self.top_k, self.min_reward = top_k, min_reward
        self.epochs, self.n_minibatches = epochs, n_minibatches
        self.updates_per_call = epochs * n_minibatches

    def kept_batch(self, data: PackedBatch) -> tuple[PackedBatch, list[float], list[float]]:
        """The kept responses as samples of their own, with ``loss_mask`` on response tokens;
        every reward, and the kept ones."""
        groups = [[float(t) for r in data.sequences("rewards", i) for t in r]
                  for i in range(len(data))]
        choice = select_best(groups, self.top_k, self.min_reward)
        ids, seqs, masks, kept_rewards = [], [], [], []
        for i, picks in enumerate(choice):
            tokens = data.sequences(IDS, i)
            prompt = data.sequences("prompt_mask", i)
            for j in picks:
                ids.append(f"{data.ids[i]}#{j}")
                seqs.append([tokens[j]])
                masks.append([~prompt[j].bool()])
                kept_rewards.append(groups[i][j])
        every = [r for g in groups for r in g]
        if not ids:  # nothing qualified here but maybe on another rank: a zero-token loss
            i = 0  # keeps this rank's steps in line with theirs
            ids, seqs = [data.ids[i]], [[data.sequences(IDS, i)[0]]]
            masks = [[torch.zeros_like(seqs[0][0], dtype=torch.bool)]]
        batch = PackedBatch.from_sequences(ids, {IDS: seqs, "loss_mask": masks},
                                           dtypes={IDS: torch.int64, "loss_mask": torch.bool})
        return batch, every, kept_rewards

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        kept, every, kept_rewards = self.kept_batch(data)
        losses: list[float] = []
        tokens, last = 0, {}
        # Nothing kept on any rank: no step at all, since AdamW's momentum would still move the
        # weights on zero gradients. Otherwise the same number of steps on every rank.
        epochs = self.epochs if distributed.all_reduce([len(kept_rewards)])[0] > 0 else 0
        for _ in range(epochs):
            n = self.n_minibatches
            parts = kept.minibatches(n) if n > 1 and len(kept) >= n else [kept] * n
            for mb in parts:
                ids, cu, query = answer_query(handle, mb)  # the kept responses' tokens only
                loss, count = sft_loss(handle.model(ids, cu, query)[0])
                handle.model.backward(loss)
                last = handle.model.step()
                losses.append(loss.item())
                tokens += count
        metrics: dict[str, Any] = {
            "tokens": float(tokens), "updates": float(len(losses)),
            "kept_frac": len(kept_rewards) / len(every),
            "kept_reward": sum(kept_rewards) / len(kept_rewards) if kept_rewards else 0.0,
            "/reward/mean": sum(every) / len(every),
            **last,
        }
        if losses:
            metrics["loss"] = sum(losses) / len(losses)
        return metrics

"""Online DPO: the actor samples several responses per prompt, the reward ranks them, and the
best and the worst become a chosen/rejected pair for the DPO loss against the reference.

    actor_gen -> rew_inf -> pairs -> ref_inference -> actor_train

A prompt whose responses all scored alike (a tie) gives no pair: its weight in the loss is 0,
and ``online_dpo/ties_frac`` counts it; a step where every prompt on every rank tied trains
nothing (docs/dpo.md#online-dpo).
"""

from __future__ import annotations

import torch

from rlcore.sdk import (
    INPUT_IDS,
    LOSS_MASK,
    MFC,
    NO_EOS,
    PROMPT_MASK,
    REWARDS,
    ModelHandle,
    ModelInterface,
    PackedBatch,
    RoleSpec,
    StepContext,
    distributed,
)
from rlcore_plugin_algorithms.experiments import LOSS_KEYS
from rlcore_plugin_algorithms.interfaces import PAIR_WEIGHT
from rlcore_plugin_algorithms.rl_experiments import SamplingExperiment

PAIR_IDS, PAIR_MASK = "pair_input_ids", "pair_loss_mask"
TIE_TOL = 1e-6


def best_and_worst(rewards: list[float]) -> tuple[int, int] | None:
    """Indices of the first highest and the first lowest reward; None when all tie."""
    if max(rewards) - min(rewards) <= TIE_TOL:
        return None
    return rewards.index(max(rewards)), rewards.index(min(rewards))


class PreferencePairsInterface(ModelInterface):
    """inference: per prompt, its best and worst response as ``[chosen, rejected]`` token ids
    and answer masks, and their weight in the loss (0 for a tie)."""

    @torch.no_grad()
    def inference(self, handle: ModelHandle, data: PackedBatch) -> tuple[PackedBatch, dict]:
        ids, masks, weights, lens = [], [], [], []
        chosen_r, rejected_r, start = [], [], 0
        rewards = data.data[REWARDS].float().tolist()
        for i, group in enumerate(data.seqlens[REWARDS]):
            scores = rewards[start : start + len(group)]
            start += len(group)
            pick = best_and_worst(scores)
            best, worst = pick or (0, len(scores) - 1)
            seqs, prompt = data.sequences(INPUT_IDS, i), data.sequences(PROMPT_MASK, i)
            for j in (best, worst):
                ids.append(seqs[j])
                masks.append(~prompt[j].bool())
            weights.append([float(pick is not None)] * 2)
            lens.append([len(seqs[best]), len(seqs[worst])])
            if pick is not None:
                chosen_r.append(scores[best])
                rejected_r.append(scores[worst])
        out = PackedBatch(list(data.ids), {
            PAIR_IDS: torch.cat(ids), PAIR_MASK: torch.cat(masks),
            PAIR_WEIGHT: torch.tensor([w for pair in weights for w in pair])},
            {PAIR_IDS: lens, PAIR_MASK: lens, PAIR_WEIGHT: [[1, 1] for _ in lens]})
        return out, self.stats(rewards, len(lens), chosen_r, rejected_r)

    @staticmethod
    def stats(rewards: list[float], prompts: int, chosen: list[float],
              rejected: list[float]) -> dict[str, float]:
        """Step-level: the mean reward, the share of tied prompts, the pairs' mean rewards."""
        n, total, pairs, c, r = distributed.all_reduce(
            [float(len(rewards)), sum(rewards), float(len(chosen)), sum(chosen), sum(rejected)])
        (n_prompts,) = distributed.all_reduce([float(prompts)])
        out = {"/reward/mean": total / max(n, 1.0),
               "/online_dpo/ties_frac": 1.0 - pairs / max(n_prompts, 1.0)}
        if pairs:
            out.update({"/online_dpo/chosen_reward": c / pairs,
                        "/online_dpo/rejected_reward": r / pairs})
        return out


class OnlineDPO(SamplingExperiment):
    """The actor samples, the reward scores, ``pairs`` picks chosen and rejected, the
    reference scores them and the actor takes a DPO step."""

    name = "online_dpo"
    headline = ("reward/mean", "online_dpo/ties_frac", "eval/accuracy")

    def roles(self) -> list[RoleSpec]:
        ref = RoleSpec("ref", trainable=False, init_from="actor", options=self.config.ref)
        return [self.actor_spec(), ref, self.reward_role(), RoleSpec("pairs", backend="none")]

    def mfcs(self) -> list[MFC]:
        dpo = self.config.dpo
        args = {"beta": dpo.beta, "loss_type": dpo.loss_type,
                **{k: getattr(dpo, k) for k in LOSS_KEYS[dpo.loss_type]}}
        pair = {"input_remap": {PAIR_IDS: INPUT_IDS, PAIR_MASK: LOSS_MASK}}
        return [
            self.sampler_mfc(outputs={k: k for k in (INPUT_IDS, PROMPT_MASK, NO_EOS)}),
            self.reward_mfc(),
            MFC("pairs", "pairs", "inference", "preference_pairs",
                input_keys=(INPUT_IDS, PROMPT_MASK, REWARDS),
                output_keys=(PAIR_IDS, PAIR_MASK, PAIR_WEIGHT)),
            MFC("ref_inference", "ref", "inference", "dpo", input_keys=(PAIR_IDS, PAIR_MASK),
                output_keys=("ref_logps",), output_remap={"seq_logps": "ref_logps"}, **pair),
            MFC("actor_train", "actor", "train_step", "dpo",
                input_keys=(PAIR_IDS, PAIR_MASK, "ref_logps", PAIR_WEIGHT),
                interface_args=args, **pair),
        ]

    def step(self, ctx: StepContext, batch: PackedBatch) -> PackedBatch:
        """The graph once; when no rank has a pair, the reference and the actor are skipped
        (an optimizer step on zero gradients would still move the weights: Adam's momentum)."""
        cut = ctx.order.index("pairs") + 1
        batch = ctx.run(batch, ctx.order[:cut])
        (pairs,) = ctx.all_reduce([float(batch.data[PAIR_WEIGHT].sum())])
        ctx.add_metrics({"online_dpo/skipped": float(pairs == 0)})
        return batch if pairs == 0 else ctx.run(batch, ctx.order[cut:])

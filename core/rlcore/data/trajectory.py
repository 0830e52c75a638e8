"""The batch keys of a rollout, one owner for each name, and what advantage estimators and
policy losses are given (:class:`AdvantageInputs`, :class:`PolicyLossInputs`).

A trajectory is packed like any batch (``rlcore.data.batch``): per token, a flat ``[T]``
tensor over the packed sequences; per sequence, one value each. Per action (a response
token), the RL math works on ``[N]`` tensors that keep only the actions, with offsets
``cu`` ``[S+1]`` per sequence. Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Field:
    """One batch key: its name, whether it is per token, sequence, sample or kept id, and what."""

    key: str
    per: Literal["token", "sequence", "sample", "kept id"]
    doc: str


PROMPTS = "packed_prompts"
INPUT_IDS = "packed_input_ids"
LOSS_MASK = "loss_mask"
PROMPT_MASK = "prompt_mask"
LOGPROBS = "packed_logprobs"
LOGITS_KEEP_IDS = "logits_keep_ids"
LOGITS_KEEP_COUNTS = "logits_keep_counts"
ROUTED_EXPERTS = "routed_experts"
LEGACY_LOGITS_MASK = "logits_mask"  # the dense [T, V] form; read no more (a clear error)
NO_EOS = "seq_no_eos_mask"
VERSION = "version"
REWARDS = "rewards"
BASELINE_REWARDS = "baseline_rewards"
VALUES = "values"
REF_LOGPROBS = "packed_ref_logprobs"
PROX_LOGPROBS = "packed_prox_logprobs"
ADVANTAGES = "advantages"
RETURNS = "returns"
KL_COEF = "kl_coef"
ENV_REWARDS = "env_rewards"
TURN_REWARDS = "turn_rewards"

TRAJECTORY: tuple[Field, ...] = (
    Field(PROMPTS, "sample", "the prompt's tokens (the dataset's, before sampling)"),
    Field(INPUT_IDS, "token", "prompt + response tokens of each sampled sequence"),
    Field(PROMPT_MASK, "token", "True on tokens the actor did not sample: the prompt, and the "
          "observations (tool answers) of a multi-turn episode"),
    Field(LOGPROBS, "token", "at t, the sampling log-prob of token t+1 (0 off the response)"),
    Field(LOGITS_KEEP_COUNTS, "token", "at t, how token t+1's sampling cut the vocabulary: 0 "
          "nothing cut, c > 0 c ids kept, c < 0 -c ids cut (rlcore.models.kept_tokens)"),
    Field(LOGITS_KEEP_IDS, "kept id", "those ids, flat in token order (packed per sequence)"),
    Field(ROUTED_EXPERTS, "token", "int16 [T, MoE layers, k]: the experts each MoE layer sent "
          "token t to when sampling (prefill and decode), -1 where unknown; routing replay only "
          "(actor.moe.router_replay)"),
    Field(NO_EOS, "sequence", "the response was cut at max_new_tokens (no eos)"),
    Field(VERSION, "sequence", "the actor's weight version that sampled the sequence"),
    Field(REWARDS, "sequence", "the reward role's score"),
    Field(ENV_REWARDS, "sequence", "an environment's rewards of the episode, summed"),
    Field(TURN_REWARDS, "token", "at t, the environment's reward for the turn whose last "
          "action is token t+1 (0 elsewhere)"),
    Field(BASELINE_REWARDS, "sample", "the reward of the prompt's greedy response (ReMax)"),
    Field(VALUES, "token", "the critic's value at each position"),
    Field(REF_LOGPROBS, "token", "log-probs of the sampled tokens under the reference"),
    Field(PROX_LOGPROBS, "token", "log-probs of the sampled tokens under the actor at the "
                                  "step's start (proximal policy; rollout.correction only)"),
    Field(ADVANTAGES, "token", "the advantage of each action (0 elsewhere)"),
    Field(RETURNS, "token", "the critic's regression target at each action (0 elsewhere)"),
    Field(KL_COEF, "sequence", "the KL coefficient this step's losses use"),
)
# The keys one sampling call writes (``KEPT_TOKENS`` too when sampling can cut tokens).
ROLLOUT = (INPUT_IDS, PROMPT_MASK, LOGPROBS, NO_EOS, VERSION)
KEPT_TOKENS = (LOGITS_KEEP_IDS, LOGITS_KEEP_COUNTS)
# Keys whose rows are not tokens: a sample's cost (batch balancing) does not count them.
NOT_TOKENS = frozenset({LOGITS_KEEP_IDS})


@dataclass
class AdvantageInputs:
    """What an advantage estimator gets for this rank's sequences (``[N]``: per action).

    ``rewards`` ``[S]`` are the shaped sequence rewards; ``token_rewards`` ``[N]`` put each one
    on its last action, minus ``kl_coef * KL`` per action when the KL shapes the reward.
    ``values`` ``[N]`` and ``last_values`` ``[S]`` (the bootstrap after a cut response) come
    from a critic, ``baselines`` ``[G]`` from a baseline (both None unless the estimator's
    record asks). ``groups`` ``[G+1]`` offsets the responses to each prompt; ``options`` is
    the ``adv`` config section.
    """

    rewards: torch.Tensor
    token_rewards: torch.Tensor
    cu: torch.Tensor
    groups: torch.Tensor
    options: Any
    values: torch.Tensor | None = None
    last_values: torch.Tensor | None = None
    baselines: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        """Actions per sequence ``[S]``."""
        return (self.cu[1:] - self.cu[:-1]).long()

    def per_token(self, per_sequence: torch.Tensor) -> torch.Tensor:
        """``[S]`` values repeated over each sequence's actions: ``[N]``."""
        import torch

        return torch.repeat_interleave(per_sequence.float(), self.lengths)


@dataclass
class PolicyLossInputs:
    """What a policy loss gets for one minibatch (``[N]``: per action).

    ``log_ratio`` is ``logp - old_logp`` (per token, or GSPO's sequence-level ratio when
    ``policy.ratio_level=sequence``), clamped to ``±policy.log_ratio_clamp``, and carries the
    gradient; ``options`` is the ``policy``
    config section. A loss returns ``{"loss": [N]}`` and may add ``"clipped"`` (bool
    ``[N]``), ``"ratio"`` and ``"approx_kl"`` for the metrics.
    """

    logp: torch.Tensor
    old_logp: torch.Tensor
    log_ratio: torch.Tensor
    advantages: torch.Tensor
    cu: torch.Tensor
    options: Any

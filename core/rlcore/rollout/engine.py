"""The rollout-engine contract: what the RL experiments ask of whoever samples.

An engine is registered with ``rlcore_rollout_engines`` and built as ``impl(handle, **options)``
from the trained role's :class:`~rlcore.runtime.interface.ModelHandle`. The contract is the
common part of the core sampler, vLLM and SGLang (docs/rollout.md maps each call):

- ``generate`` from token ids, with the sampling log-prob, finish reason and weight version of
  every new token, and what sampling kept where it cut tokens (for exact replay);
- ``update_weights`` with a version: all weights, a named subset (adapters), or none when the
  engine shares the trainer's module;
- ``release_memory`` / ``resume_memory`` between phases (vLLM's sleep and wake), and ``close``;
- for asynchronous RL, ``submit`` / ``collect`` (:class:`AsyncRolloutEngine`).
Importing this module does not import torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import torch

    from rlcore.models.generation import GenerationConfig

Finish = Literal["stop", "length"]


@dataclass
class Rollout:
    """Per prompt: new ``tokens`` [n], their sampling ``logprobs`` [n] and weight ``versions``
    [n], why generation ``finish``-ed (``stop``: an eos; ``length``: max_new_tokens), and
    ``kept``, what sampling allowed at each new token as
    :class:`~rlcore.models.kept_tokens.KeptTokens` (None when nothing was cut); ``routing``, with
    ``GenerationConfig.record_routing``, each prompt + response token's experts per MoE layer
    (``GenerationOutput.routing``), None from an engine that does not record them."""

    tokens: list[torch.Tensor]
    logprobs: list[torch.Tensor]
    versions: list[torch.Tensor]
    finish: list[Finish]
    kept: list[Any]
    routing: list[Any] | None = None

    def __len__(self) -> int:
        return len(self.tokens)


class RolloutEngine(Protocol):
    """What samples for the RL experiments (``rollout.engine``)."""

    @property
    def version(self) -> int:
        """The weight version the next generated token will come from."""
        ...

    @property
    def metrics(self) -> dict[str, float]:
        """What the last ``generate`` or ``collect`` measured, as step-level metrics
        (``/rollout/sync_check``, ``/time/weight_sync``, ``/time/rollout_wait``...); may be empty."""
        ...

    def generate(self, prompts: list[list[int]], config: GenerationConfig, seed: int) -> Rollout:
        """Sample one response per prompt (token ids); the same ``seed`` and weights repeat it."""
        ...

    def update_weights(self, version: int,
                       weights: Mapping[str, torch.Tensor] | None = None) -> None:
        """Take ``weights`` (every parameter, or a named subset such as adapters; None when the
        engine shares the trainer's module) and tag tokens generated from now on ``version``."""
        ...

    def release_memory(self) -> None:
        """Free what generation holds (KV cache, weights) while the trainer trains."""
        ...

    def resume_memory(self) -> None:
        """Take back what ``release_memory`` freed, before the next ``generate``."""
        ...

    def close(self) -> None:
        """Stop and free everything; the engine is not used again."""
        ...


class AsyncRolloutEngine(RolloutEngine, Protocol):
    """An engine that samples while the trainers train (``rollout.max_staleness`` > 0)."""

    def submit(self, prompts: list[list[int]], config: GenerationConfig, seed: int) -> int:
        """Start sampling ``prompts`` and return at once with a ticket for :meth:`collect`."""
        ...

    def collect(self, ticket: int) -> Rollout:
        """Wait for a submitted batch; its tokens' ``versions`` say which weights made them."""
        ...

"""The ``local`` rollout engine: the core KV-cache sampler on the trainer's own module.

It shares the trainer's weights (under ZeRO-3 it gathers them for the whole generation), so
``update_weights`` without weights only moves the version; with weights it loads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from rlcore.models.generation import GenerationConfig, generate
from rlcore.rollout.engine import Rollout

if TYPE_CHECKING:
    from rlcore.runtime.interface import ModelHandle


class LocalEngine:
    """Samples with ``handle``'s module in this process (the default engine)."""

    def __init__(self, handle: ModelHandle):
        self.handle = handle
        self._version = handle.version
        self.metrics: dict[str, float] = {}

    @property
    def version(self) -> int:
        return self._version

    def generate(self, prompts: list[list[int]], config: GenerationConfig, seed: int) -> Rollout:
        generator = torch.Generator(self.handle.device).manual_seed(seed)
        with self.handle.model.gathered_parameters(), torch.no_grad():
            out = generate(self.handle.module, prompts, config, generator=generator)
        eos = set(config.eos_token_ids)
        finish = ["stop" if len(t) and int(t[-1]) in eos else "length" for t in out.tokens]
        versions = [torch.full((len(t),), self._version, dtype=torch.int64) for t in out.tokens]
        return Rollout(out.tokens, out.logprobs, versions, finish, out.kept, out.routing)

    def update_weights(self, version: int,
                       weights: Mapping[str, torch.Tensor] | None = None) -> None:
        if weights is not None:
            with self.handle.model.gathered_parameters(), torch.no_grad():
                missing = set(weights) - set(self.handle.module.state_dict())
                if missing:
                    raise KeyError(f"update_weights: the module has no parameters {sorted(missing)}")
                self.handle.module.load_state_dict(dict(weights), strict=False)
        self._version = int(version)

    def release_memory(self) -> None:
        """Nothing to free: the KV cache lives only inside ``generate``."""

    def resume_memory(self) -> None:
        """Nothing was freed."""

    def close(self) -> None:
        """The module belongs to the trainer: nothing to close."""

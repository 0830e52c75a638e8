"""ModelFamily: what a family plugin implements to map an HF architecture onto the core model."""

from __future__ import annotations

import abc
from typing import Any

from rlcore.models.config import TransformerConfig

StateDict = dict[str, Any]  # name -> torch.Tensor (kept as Any so this module needs no torch)


class ModelFamily(abc.ABC):
    """Converts HF configs and state dicts to the core transformer and back.

    State dicts on the core side use the names of docs/internals.md; parameter-name lists use
    the HF names, so that a pipeline stage or shard reads only its slice of a checkpoint.
    The scalar value head is HF's ``*ForSequenceClassification`` ``score.weight`` (no bias).
    """

    name: str = ""  # the family name registered through rlcore_model_families
    model_type: str = ""  # HF config.json "model_type"
    architecture: str = ""  # HF causal-LM class written to config.json "architectures"

    @abc.abstractmethod
    def config_from_hf(self, hf: dict[str, Any]) -> TransformerConfig:
        """Core config from a ``config.json`` dict; unsupported options raise ModelLoadError."""

    @abc.abstractmethod
    def config_to_hf(self, cfg: TransformerConfig) -> dict[str, Any]:
        """``config.json`` dict (with ``model_type`` and ``architectures``) for a core config."""

    @abc.abstractmethod
    def state_dict_from_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        """Core state dict from an HF one (drop tied/derived keys, split fused weights)."""

    @abc.abstractmethod
    def state_dict_to_hf(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        """HF state dict from a core one; the exact inverse of :meth:`state_dict_from_hf`."""

    def state_dict_to_files(self, sd: StateDict, cfg: TransformerConfig) -> StateDict:
        """The HF state dict as transformers writes it to files (where that differs from how it
        holds it in memory, e.g. one tensor per expert); the same dict by default."""
        return sd

    @abc.abstractmethod
    def embedding_param_names(self, cfg: TransformerConfig) -> list[str]:
        """HF names of the input embedding parameters (token and learned positions)."""

    @abc.abstractmethod
    def block_param_names(self, cfg: TransformerConfig, i: int) -> list[str]:
        """HF names of the parameters of block ``i``."""

    @abc.abstractmethod
    def head_param_names(self, cfg: TransformerConfig) -> list[str]:
        """HF names of the final norm and of the LM (or value) head."""

    @abc.abstractmethod
    def tiny_config(self) -> TransformerConfig:
        """A small random-testable config that exercises the family's quirks."""

    def value_head_architecture(self, cfg: TransformerConfig) -> str:
        """HF class that loads this family with a value head (``XForSequenceClassification``)."""
        arch = (self.config_to_hf(cfg).get("architectures") or [self.architecture])[0]
        for suffix in ("ForCausalLM", "LMHeadModel"):
            if arch.endswith(suffix):
                return arch[: -len(suffix)] + "ForSequenceClassification"
        return arch

    def param_names(self, cfg: TransformerConfig) -> list[str]:
        """Every HF parameter name, in order: embedding, blocks, head."""
        names = list(self.embedding_param_names(cfg))
        for i in range(cfg.n_layers):
            names += self.block_param_names(cfg, i)
        return names + list(self.head_param_names(cfg))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or self.model_type}>"

"""Configs of the standard datasets. Plain dataclasses: importing this never imports torch."""

from __future__ import annotations

from dataclasses import dataclass

from rlcore.data.config import DatasetConfig


@dataclass
class PromptAnswerConfig(DatasetConfig):
    """SFT rows: ``{"prompt","answer"}``, ``{"prompt","completion"}`` or ``{"messages"}``."""

    # Also compute the loss on prompt tokens (default: on the answer / assistant replies only).
    train_on_prompt: bool = False
    # Append the tokenizer's eos to plain-text answers (chat templates add their own).
    add_eos: bool = True


@dataclass
class PairedConfig(DatasetConfig):
    """Preference rows: ``{"prompt","chosen","rejected"}``, ReaL's pos/neg lists, or chats.

    ``max_length`` bounds each of the chosen and rejected sequences.
    """

    add_eos: bool = True
    # ReaL-style rows give several pairs per prompt: keep at most this many (None: all).
    max_pairs_per_prompt: int | None = None


@dataclass
class PromptConfig(DatasetConfig):
    """Prompt rows for PPO/GRPO: ``{"prompt"}`` or ``{"messages"}`` plus carried fields.

    ``max_length`` bounds the prompt; leave room for generation in the model's context.
    """

    max_length: int = 512

"""Configs of the standard datasets. Plain dataclasses: importing this never imports torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlcore.sdk import DatasetConfig


@dataclass
class PromptAnswerConfig(DatasetConfig):
    """SFT rows: ``{"prompt","answer"}``, ``{"prompt","completion"}`` or ``{"messages"}``."""

    train_on_prompt: bool = field(default=False, metadata={
        "help": "loss on prompt tokens too (default: answer / assistant replies only)"})
    add_eos: bool = field(default=True, metadata={
        "help": "append eos to plain-text answers (chat templates add their own)"})


@dataclass
class PairedConfig(DatasetConfig):
    """Preference rows: ``{"prompt","chosen","rejected"}``, ReaL's pos/neg lists, or chats;
    unpaired (KTO): ``{"prompt","completion","label"}``.

    ``max_length`` bounds each of the chosen and rejected sequences.
    """

    add_eos: bool = field(default=True, metadata={"help": "append eos to plain-text answers"})
    max_pairs_per_prompt: int | None = field(default=None, metadata={
        "help": "ReaL-style rows: pairs kept per prompt; null: all", "range": "[1, inf)"})
    unpaired: bool = field(default=False, metadata={
        "help": "samples of one labelled completion (KTO; dpo.loss_type=kto sets it); pairs "
                "become a desirable and an undesirable completion"})


@dataclass
class PromptConfig(DatasetConfig):
    """Prompt rows for PPO/GRPO: ``{"prompt"}`` or ``{"messages"}`` plus carried fields.

    ``max_length`` bounds the prompt; leave room for generation in the model's context.
    """

    max_length: int = field(default=512, metadata={
        "help": "longest prompt in tokens; leave room for generation", "range": "[2, inf)"})

"""rlcore's standard datasets, registered like any third-party plugin.

Records name their classes lazily, so listing plugins never imports torch.
"""

from __future__ import annotations

import rlcore
from rlcore.plugins.records import DatasetRecord

__version__ = "0.1.0"

_PKG = "rlcore_plugin_datasets"


@rlcore.hookimpl
def rlcore_datasets() -> list[DatasetRecord]:
    """The prompt_answer, paired and prompt datasets."""
    return [
        DatasetRecord(
            "prompt_answer",
            impl=f"{_PKG}.prompt_answer:PromptAnswerDataset",
            config=f"{_PKG}.config:PromptAnswerConfig",
            doc="SFT: {prompt, answer}, {prompt, completion} or {messages}; loss on the answer.",
        ),
        DatasetRecord(
            "paired",
            impl=f"{_PKG}.paired:PairedDataset",
            config=f"{_PKG}.config:PairedConfig",
            doc="RM/DPO: {prompt, chosen, rejected}, {prompt, pos_answers, neg_answers}, chats; "
                "KTO: {prompt, completion, label}.",
        ),
        DatasetRecord(
            "prompt",
            impl=f"{_PKG}.prompt:PromptDataset",
            config=f"{_PKG}.config:PromptConfig",
            doc="PPO/GRPO: {prompt} or {messages}; extra fields such as answer go to rewards.",
        ),
    ]

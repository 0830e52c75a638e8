"""prompt: prompts for PPO/GRPO, with the row's other fields carried for reward functions.

Batch key: ``packed_prompts`` (int64, one sequence per sample). Metadata holds every
other field of the row (``answer``, ``ground_truth``, ``data_source``, ...; or just
``carry_fields``), which reward functions receive as ``samples``. A chat whose last
message is the assistant's carries that message's content as ``answer``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from rlcore.sdk import (
    PROMPTS,
    PackedDataset,
    Row,
    Sample,
    check_messages,
    check_str,
    embedded,
    fit_prompt,
)
from rlcore_plugin_datasets import forms
from rlcore_plugin_datasets.config import PromptConfig


class PromptDataset(PackedDataset):
    """Prompts from ``{"prompt", ...}`` or ``{"messages": [...], ...}`` rows."""

    kind: ClassVar[str] = "prompt"
    dtypes: ClassVar[dict[str, torch.dtype]] = {PROMPTS: torch.int64}
    # prompt ids by text, filled by build_samples for the rows it tokenizes
    _known: dict[str, list[int]] = {}

    def __init__(self, config: PromptConfig, tokenizer: Any):
        super().__init__(config, tokenizer)

    def build_samples(self, rows: list[Row]) -> list[Sample]:
        """Plain-text prompts are tokenized in one batched call first."""
        texts = [r.values["prompt"] for r in rows if isinstance(r.values.get("prompt"), str)]
        self._known = forms.encode_many(self.tokenizer, texts, True)
        try:
            return super().build_samples(rows)
        finally:
            self._known = {}

    def embedded_rows(self) -> list[dict[str, Any]]:
        c = self.config
        return embedded.prompt_rows(c.embedded_size, c.seed, c.embedded_split,
                                    c.embedded_max_operand)

    def build_sample(self, row: Row) -> list[Sample]:
        v, tok = row.values, self.tokenizer
        extra: dict[str, Any] = {}
        if "messages" in v:
            msgs = check_messages(row, "messages", v["messages"])
            if msgs[-1]["role"] == "assistant":
                if len(msgs) == 1:
                    raise row.ref.error("expected at least one message before the assistant's",
                                        "messages")
                extra["answer"] = msgs[-1]["content"]
                msgs = msgs[:-1]
            prompt, _ = forms.chat_prompt(tok, row, "messages", msgs)
            consumed = ["messages"]
        elif "prompt" in v:
            if isinstance(v["prompt"], list):
                prompt, _ = forms.chat_prompt(
                    tok, row, "prompt", check_messages(row, "prompt", v["prompt"]))
            else:
                prompt = forms.text_prompt(tok, check_str(row, "prompt", v["prompt"]), self._known)
            consumed = ["prompt"]
        else:
            raise row.ref.error('missing; expected {"prompt": ...} or {"messages": [...]}. '
                                f"The row has keys {sorted(v)}", "prompt")
        self.summary.longest = max(self.summary.longest, len(prompt))
        fitted, reason = fit_prompt(prompt, 0, self.config, tok.bos_token_id)
        if fitted is None:
            self.summary.drop(reason, row.ref)
            return []
        if reason == "truncated":
            self.summary.truncate(row.ref)
        meta = self.carried(row, consumed)
        wanted = self.config.carry_fields
        for k, val in extra.items():
            if meta.get(k) is None and (wanted is None or k in wanted):
                meta[k] = val
        return [Sample(id=f"{row.ref.unit}:{row.ref.number}",
                       sequences={PROMPTS: [fitted[0]]}, metadata=meta)]

"""prompt_answer: supervised fine-tuning rows, one sequence per sample, loss on the answer.

Batch keys: ``packed_input_ids`` (int64) and ``loss_mask`` (bool, True on answer
tokens — on every token with ``train_on_prompt``). Extra row fields go to metadata.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from rlcore.sdk import (
    INPUT_IDS,
    LOSS_MASK,
    PackedDataset,
    Row,
    Sample,
    check_messages,
    check_str,
    embedded,
    fit_prompt,
)
from rlcore_plugin_datasets import forms
from rlcore_plugin_datasets.config import PromptAnswerConfig

FORMS = '{"prompt", "answer"}, {"prompt", "completion"} or {"messages": [...]}'


class PromptAnswerDataset(PackedDataset):
    """SFT samples from ``{"prompt","answer"}``, ``{"prompt","completion"}`` or ``{"messages"}``."""

    kind: ClassVar[str] = "prompt_answer"
    dtypes: ClassVar[dict[str, torch.dtype]] = {
        INPUT_IDS: torch.int64,
        LOSS_MASK: torch.bool,
    }
    # (prompt ids, answer ids) by text, filled by build_samples for the rows it tokenizes
    _known: tuple[dict[str, list[int]], dict[str, list[int]]] = ({}, {})

    def __init__(self, config: PromptAnswerConfig, tokenizer: Any):
        super().__init__(config, tokenizer)

    def build_samples(self, rows: list[Row]) -> list[Sample]:
        """Plain-text prompts and answers are tokenized in two batched calls first."""
        plain = [v for v in (r.values for r in rows) if isinstance(v.get("prompt"), str)]
        answers = [v.get("answer", v.get("completion")) for v in plain]
        self._known = (forms.encode_many(self.tokenizer, [v["prompt"] for v in plain], True),
                       forms.encode_many(self.tokenizer, [a for a in answers if isinstance(a, str)],
                                         False))
        try:
            return super().build_samples(rows)
        finally:
            self._known = ({}, {})

    def embedded_rows(self) -> list[dict[str, Any]]:
        c = self.config
        return embedded.sft_rows(c.embedded_size, c.seed, c.embedded_split, c.embedded_max_operand)

    def _parse(self, row: Row) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """(prompt ids, prompt loss mask, answer ids, consumed fields)."""
        v, tok = row.values, self.tokenizer
        if "messages" in v:
            msgs = check_messages(row, "messages", v["messages"])
            if msgs[-1]["role"] != "assistant":
                raise row.ref.error(
                    f"the last message must be the assistant's answer, got role "
                    f"{msgs[-1]['role']!r}", f"messages[{len(msgs) - 1}].role")
            prompt, mask = forms.chat_prompt(tok, row, "messages", msgs[:-1])
            answer = forms.chat_reply(tok, row, "messages", msgs[:-1], msgs[-1:])
            return prompt, mask, answer, ["messages"]
        if "prompt" not in v:
            raise row.ref.error(f"missing; expected one of the forms {FORMS}. The row has keys "
                                f"{sorted(v)}", "prompt")
        key = "answer" if "answer" in v else "completion" if "completion" in v else None
        if key is None:
            raise row.ref.error(f"missing; expected 'answer' or 'completion' next to 'prompt' "
                                f"(forms: {FORMS}). The row has keys {sorted(v)}", "answer")
        if isinstance(v["prompt"], list):  # TRL conversational prompt/completion
            p_msgs = check_messages(row, "prompt", v["prompt"])
            c_msgs = check_messages(row, key, v[key])
            forms.check_reply_messages(row, key, c_msgs)
            prompt, mask = forms.chat_prompt(tok, row, "prompt", p_msgs)
            answer = forms.chat_reply(tok, row, key, p_msgs, c_msgs)
            return prompt, mask, answer, ["prompt", key]
        known_prompts, known_answers = self._known
        prompt = forms.text_prompt(tok, check_str(row, "prompt", v["prompt"]), known_prompts)
        answer = forms.text_answer(tok, check_str(row, key, v[key]), self.config.add_eos,
                                   known_answers)
        return prompt, np.zeros(len(prompt), dtype=bool), answer, ["prompt", key]

    def build_sample(self, row: Row) -> list[Sample]:
        prompt, pmask, answer, consumed = self._parse(row)
        self.summary.longest = max(self.summary.longest, len(prompt) + len(answer))
        fitted, reason = fit_prompt(prompt, len(answer), self.config,
                                    self.tokenizer.bos_token_id, extra=[pmask])
        if fitted is None:
            self.summary.drop(reason, row.ref)
            return []
        if reason == "truncated":
            self.summary.truncate(row.ref)
        prompt, pmask = fitted
        if self.config.train_on_prompt:
            pmask = np.ones(len(prompt), dtype=bool)
        seq = np.concatenate([prompt, answer])
        mask = np.concatenate([pmask, np.ones(len(answer), dtype=bool)])
        return [Sample(
            id=f"{row.ref.unit}:{row.ref.number}",
            sequences={INPUT_IDS: [seq], LOSS_MASK: [mask]},
            metadata=self.carried(row, consumed),
        )]

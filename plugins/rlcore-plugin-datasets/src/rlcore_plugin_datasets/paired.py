"""paired: preference rows for reward modelling and DPO; each sample is ``[chosen, rejected]``.

Batch keys: ``packed_input_ids`` (int64; two sequences per sample, chosen first,
both starting with the same prompt) and ``loss_mask`` (bool, True on the answer
tokens, for DPO log-probability sums). ReaL-style rows with several pos/neg answers
become one sample per pair, with ids ``"line:N/k"``. With ``unpaired`` set (KTO), samples
hold one labelled completion instead (:mod:`rlcore_plugin_datasets.unpaired`).
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
    check_str_list,
    embedded,
    fit_prompt,
)
from rlcore_plugin_datasets import forms, unpaired
from rlcore_plugin_datasets.config import PairedConfig

FORMS = ('{"prompt", "chosen", "rejected"}, {"prompt", "pos_answers": [...], '
         '"neg_answers": [...]} or chats {"chosen": [messages], "rejected": [messages]}')


class PairedDataset(PackedDataset):
    """Preference pairs from plain, ReaL-style (pos/neg lists) or chat rows."""

    kind: ClassVar[str] = "paired"
    dtypes: ClassVar[dict[str, torch.dtype]] = {
        INPUT_IDS: torch.int64,
        LOSS_MASK: torch.bool,
        unpaired.DESIRABLE: torch.bool,
    }

    def __init__(self, config: PairedConfig, tokenizer: Any):
        super().__init__(config, tokenizer)

    def embedded_rows(self) -> list[dict[str, Any]]:
        c = self.config
        return embedded.pair_rows(c.embedded_size, c.seed, c.embedded_split,
                                  c.embedded_max_operand)

    def build_samples(self, rows: list[Row]) -> list[Sample]:
        """Pairs, or with ``unpaired`` labelled completions with their mismatched partners."""
        if self.config.unpaired:
            return unpaired.build_samples(self, rows)
        return super().build_samples(rows)

    def parse_pairs(self, row: Row) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], list[str]]:
        """(prompt ids, [(chosen ids, rejected ids), ...], consumed fields)."""
        v, tok, add_eos = row.values, self.tokenizer, self.config.add_eos
        if "pos_answers" in v or "neg_answers" in v:
            for k in ("prompt", "pos_answers", "neg_answers"):
                if k not in v:
                    raise row.ref.error(f"missing; ReaL-style rows need 'prompt', 'pos_answers' "
                                        f"and 'neg_answers'. The row has keys {sorted(v)}", k)
            prompt = forms.text_prompt(tok, check_str(row, "prompt", v["prompt"]))
            pos = check_str_list(row, "pos_answers", v["pos_answers"])
            neg = check_str_list(row, "neg_answers", v["neg_answers"])
            if len(pos) != len(neg):
                raise row.ref.error(
                    f"expected as many neg_answers as pos_answers (they pair up in order), "
                    f"got {len(neg)} and {len(pos)}", "neg_answers")
            pairs = [(forms.text_answer(tok, c, add_eos), forms.text_answer(tok, r, add_eos))
                     for c, r in zip(pos, neg, strict=True)]
            return prompt, pairs, ["prompt", "pos_answers", "neg_answers"]
        if unpaired.is_unpaired_row(v):
            raise row.ref.error("a labelled completion (the unpaired form) is read by "
                                "dpo.loss_type=kto only (it sets dataset.unpaired); other "
                                f"losses need pairs: {FORMS}", "completion" if "completion" in v
                                else "label")
        for k in ("chosen", "rejected"):
            if k not in v:
                raise row.ref.error(f"missing; expected one of the forms {FORMS}. The row has "
                                    f"keys {sorted(v)}", k)
        if "prompt" not in v:
            # Chats with an implicit prompt: everything before the last (assistant) message.
            chosen = check_messages(row, "chosen", v["chosen"])
            rejected = check_messages(row, "rejected", v["rejected"])
            for k, m in (("chosen", chosen), ("rejected", rejected)):
                if m[-1]["role"] != "assistant":
                    raise row.ref.error(f"expected the last message to be the assistant's reply, "
                                        f"got role {m[-1]['role']!r}", f"{k}[{len(m) - 1}].role")
            if chosen[:-1] != rejected[:-1]:
                raise row.ref.error("expected chosen and rejected to share every message but "
                                    "the last (the shared prompt); they differ earlier",
                                    "rejected")
            p_msgs = chosen[:-1]
            prompt, _ = forms.chat_prompt(tok, row, "chosen", p_msgs)
            pair = (forms.chat_reply(tok, row, "chosen", p_msgs, chosen[-1:]),
                    forms.chat_reply(tok, row, "rejected", p_msgs, rejected[-1:]))
            return prompt, [pair], ["chosen", "rejected"]
        if isinstance(v["prompt"], list):  # TRL conversational with explicit prompt
            p_msgs = check_messages(row, "prompt", v["prompt"])
            replies = {}
            for k in ("chosen", "rejected"):
                m = check_messages(row, k, v[k])
                forms.check_reply_messages(row, k, m)
                replies[k] = forms.chat_reply(tok, row, k, p_msgs, m)
            prompt, _ = forms.chat_prompt(tok, row, "prompt", p_msgs)
            return prompt, [(replies["chosen"], replies["rejected"])], ["prompt", "chosen",
                                                                        "rejected"]
        prompt = forms.text_prompt(tok, check_str(row, "prompt", v["prompt"]))
        pair = (forms.text_answer(tok, check_str(row, "chosen", v["chosen"]), add_eos),
                forms.text_answer(tok, check_str(row, "rejected", v["rejected"]), add_eos))
        return prompt, [pair], ["prompt", "chosen", "rejected"]

    def build_sample(self, row: Row) -> list[Sample]:
        prompt, pairs, consumed = self.parse_pairs(row)
        several = len(pairs) > 1  # ids name the pair within its row, whatever the cap
        if self.config.max_pairs_per_prompt is not None:
            pairs = pairs[: self.config.max_pairs_per_prompt]
        meta = self.carried(row, consumed)
        out = []
        truncated = False
        for k, (chosen, rejected) in enumerate(pairs):
            longest = max(len(chosen), len(rejected))
            self.summary.longest = max(self.summary.longest, len(prompt) + longest)
            fitted, reason = fit_prompt(prompt, longest, self.config, self.tokenizer.bos_token_id)
            if fitted is None:
                self.summary.drop(reason, row.ref)
                continue
            truncated |= reason == "truncated"
            p = fitted[0]
            no_loss = np.zeros(len(p), dtype=bool)
            sid = f"{row.ref.unit}:{row.ref.number}" + (f"/{k}" if several else "")
            out.append(Sample(
                id=sid,
                sequences={
                    INPUT_IDS: [np.concatenate([p, chosen]), np.concatenate([p, rejected])],
                    LOSS_MASK: [np.concatenate([no_loss, np.ones(len(chosen), dtype=bool)]),
                                  np.concatenate([no_loss, np.ones(len(rejected), dtype=bool)])],
                },
                metadata=dict(meta),
            ))
        if truncated:
            self.summary.truncate(row.ref)
        return out

"""The unpaired (KTO) form of ``paired``: one labelled completion per sample.

A sample holds two sequences under ``packed_input_ids`` / ``loss_mask``: the prompt with
its own completion, then the same prompt with the completion of the previous row (the
mismatched pair from which KTO estimates its reference point), and one bool under
``desirable``. Preference rows split into a desirable (chosen) and an undesirable
(rejected) completion, as TRL's ``unpair_preference_dataset`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcore.sdk import INPUT_IDS, LOSS_MASK, Row, Sample, check_messages, check_str, fit_prompt
from rlcore_plugin_datasets import forms

DESIRABLE = "desirable"
FORM = ('{"prompt", "completion", "label": true/false}, with text or (TRL conversational) '
        'message lists for prompt and completion')


@dataclass
class Labelled:
    """One completion of a prompt and whether it is desirable, before the length limits."""

    sid: str
    prompt: np.ndarray
    completion: np.ndarray
    desirable: bool
    meta: dict[str, Any] = field(default_factory=dict)


def split_pairs(ids: list[str]) -> tuple[list[int], list[int]] | None:
    """Indices of the chosen and rejected halves of split preference pairs, in matching order;
    None when any sample is a labelled completion of its own or lacks its other half."""
    where = {sid: i for i, sid in enumerate(ids)}
    chosen = [i for i, sid in enumerate(ids) if sid.endswith("/chosen")]
    if 2 * len(chosen) != len(ids):
        return None
    rejected = [where.get(ids[i][: -len("chosen")] + "rejected") for i in chosen]
    return None if None in rejected else (chosen, rejected)  # type: ignore[return-value]


def is_unpaired_row(values: dict[str, Any]) -> bool:
    """Rows with ``completion`` or ``label`` and no ``chosen`` are in the unpaired form."""
    return ("completion" in values or "label" in values) and "chosen" not in values


def check_label(row: Row, value: Any) -> bool:
    """``label`` must be a JSON boolean: true for desirable, false for undesirable."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise row.ref.error(f"expected true (desirable) or false (undesirable), got "
                        f"{type(value).__name__} ({value!r:.40})", "label")


def parse_row(dataset: Any, row: Row) -> list[Labelled]:
    """The labelled completions of one row, in either form."""
    v, tok = row.values, dataset.tokenizer
    base = f"{row.ref.unit}:{row.ref.number}"
    if not is_unpaired_row(v):  # a preference row: chosen is desirable, rejected is not
        prompt, pairs, consumed = dataset.parse_pairs(row)
        several = len(pairs) > 1
        if dataset.config.max_pairs_per_prompt is not None:
            pairs = pairs[: dataset.config.max_pairs_per_prompt]
        meta = dataset.carried(row, consumed)
        out = []
        for k, (chosen, rejected) in enumerate(pairs):
            sid = base + (f"/{k}" if several else "")
            out += [Labelled(f"{sid}/chosen", prompt, chosen, True, dict(meta)),
                    Labelled(f"{sid}/rejected", prompt, rejected, False, dict(meta))]
        return out
    for k in ("prompt", "completion", "label"):
        if k not in v:
            raise row.ref.error(f"missing; unpaired rows are {FORM}. The row has keys "
                                f"{sorted(v)}", k)
    desirable = check_label(row, v["label"])
    if isinstance(v["prompt"], list):
        p_msgs = check_messages(row, "prompt", v["prompt"])
        reply = check_messages(row, "completion", v["completion"])
        forms.check_reply_messages(row, "completion", reply)
        completion = forms.chat_reply(tok, row, "completion", p_msgs, reply)
        prompt, _ = forms.chat_prompt(tok, row, "prompt", p_msgs)
    else:
        prompt = forms.text_prompt(tok, check_str(row, "prompt", v["prompt"]))
        text = check_str(row, "completion", v["completion"])
        completion = forms.text_answer(tok, text, dataset.config.add_eos)
    meta = dataset.carried(row, ["prompt", "completion", "label"])
    return [Labelled(base, prompt, completion, desirable, meta)]


def build_samples(dataset: Any, rows: list[Row]) -> list[Sample]:
    """Samples of every row; each row's mismatched completions come from the previous row
    that has any (the last one's for the first), cut from the right to fit ``max_length``."""
    parsed = [(row, parse_row(dataset, row)) for row in rows]
    parsed = [(row, items) for row, items in parsed if items]
    config, summary, out = dataset.config, dataset.summary, []
    for j, (row, items) in enumerate(parsed):
        partners = parsed[j - 1][1]  # j = 0: the last row's (a single row: its own)
        truncated = False
        for k, item in enumerate(items):
            summary.longest = max(summary.longest, len(item.prompt) + len(item.completion))
            fitted, reason = fit_prompt(item.prompt, len(item.completion), config,
                                        dataset.tokenizer.bos_token_id)
            if fitted is None:
                summary.drop(reason, row.ref)
                continue
            truncated |= reason == "truncated"
            p = fitted[0]
            mismatched = partners[k % len(partners)].completion[: config.max_length - len(p)]
            no_loss = np.zeros(len(p), dtype=bool)
            out.append(Sample(
                id=item.sid,
                sequences={
                    INPUT_IDS: [np.concatenate([p, item.completion]), np.concatenate([p, mismatched])],
                    LOSS_MASK: [np.concatenate([no_loss, np.ones(len(item.completion), dtype=bool)]),
                                np.concatenate([no_loss, np.ones(len(mismatched), dtype=bool)])],
                    DESIRABLE: [np.asarray([item.desirable])],
                },
                metadata=item.meta,
            ))
        if truncated:
            summary.truncate(row.ref)
    return out

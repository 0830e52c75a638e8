"""Reward functions as a graph node: registered rule rewards scoring the actor's responses.

The node runs on a role with no neural model (backend ``none``). Each response is decoded
without special tokens and scored by every function, ``fn(completions, samples)``; the
weighted sum is the sequence's reward. A function that raises, returns the wrong number of
scores or a non-finite score stops the run with an error naming it and the sample id.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rlcore.data.batch import PackedBatch
from rlcore.errors import RlcoreError
from rlcore.plugins import registry
from rlcore.runtime.interface import ModelHandle, ModelInterface

IDS = "packed_input_ids"


class RewardFunctionError(RlcoreError):
    """A reward function failed or returned unusable scores."""


def responses(tokenizer: Any, data: PackedBatch) -> tuple[list[str], list[dict], list[str]]:
    """Each sequence's decoded response, its sample's fields (plus ``id``, ``truncated``), its id."""
    prompt_mask = data.data["prompt_mask"].bool()
    no_eos = data.data["seq_no_eos_mask"].bool().tolist() if "seq_no_eos_mask" in data.data \
        else None
    rows = data.sample_dicts()
    tokens, samples, seq_ids = [], [], []
    start = 0
    for i, lens in enumerate(data.seqlens[IDS]):
        for j, n in enumerate(lens):
            piece = slice(start, start + n)
            tokens.append(data.data[IDS][piece][~prompt_mask[piece]].tolist())
            seq_id = f"{data.ids[i]}#{j}" if len(lens) > 1 else data.ids[i]
            fields = {**rows[i], "id": seq_id}
            if no_eos is not None:
                fields["truncated"] = no_eos[len(seq_ids)]
            samples.append(fields)
            seq_ids.append(seq_id)
            start += n
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return texts, samples, seq_ids


def call_reward(name: str, fn: Any, texts: list[str], samples: list[dict],
                seq_ids: list[str]) -> list[float]:
    """``fn``'s scores, checked: one finite number per response."""
    try:
        scores = fn(texts, samples)
    except Exception as exc:
        raise RewardFunctionError(
            f"reward function {name!r} raised {type(exc).__name__}: {exc} (scoring samples "
            f"{seq_ids[0]} .. {seq_ids[-1]})") from exc
    if isinstance(scores, torch.Tensor):
        scores = scores.tolist()
    try:
        scores = list(scores)
    except TypeError:
        raise RewardFunctionError(f"reward function {name!r} returned a "
                                  f"{type(scores).__name__}, not a list of scores") from None
    if len(scores) != len(texts):
        raise RewardFunctionError(
            f"reward function {name!r} returned {len(scores)} scores for {len(texts)} responses "
            f"(samples {seq_ids[0]} .. {seq_ids[-1]}); it must return one score per response")
    out = []
    for sid, s in zip(seq_ids, scores, strict=True):
        try:
            value = float(s)
        except (TypeError, ValueError):
            raise RewardFunctionError(f"reward function {name!r} returned {s!r} for sample "
                                      f"{sid}, not a number") from None
        if not math.isfinite(value):
            raise RewardFunctionError(f"reward function {name!r} returned {value} for sample "
                                      f"{sid}; rewards must be finite")
        out.append(value)
    return out


def per_sequence(data: PackedBatch, key: str, values: list[float]) -> PackedBatch:
    """One float per sequence of ``data[IDS]`` under ``key``, grouped by sample."""
    rows, start = [], 0
    for lens in data.seqlens[IDS]:
        rows.append([[v] for v in values[start : start + len(lens)]])
        start += len(lens)
    return PackedBatch.from_sequences(data.ids, {key: rows}, dtypes={key: torch.float32})


class RewardFunctionInterface(ModelInterface):
    """inference: ``rewards`` = weighted sum of registered reward functions over the responses."""

    def __init__(self, functions: list[str], weights: list[float] | None = None):
        if not functions:
            raise RewardFunctionError("no reward functions given; name registered ones "
                                      "(`rlcore list rewards`)")
        weights = list(weights) if weights is not None else [1.0] * len(functions)
        if len(weights) != len(functions):
            raise RewardFunctionError(f"{len(weights)} weights for {len(functions)} functions")
        self.functions = [(name, registry.load("rewards", name), float(w))
                          for name, w in zip(functions, weights, strict=True)]

    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        texts, samples, seq_ids = responses(handle.tokenizer, data)
        total = [0.0] * len(texts)
        for name, fn, weight in self.functions:
            scores = call_reward(name, fn, texts, samples, seq_ids)
            total = [t + weight * s for t, s in zip(total, scores, strict=True)]
        return per_sequence(data, "rewards", total)

"""Helpers over packed sequences that every interface uses: tokens on the device, the positions
a query scores, per-sequence sums, and batches of per-token or per-sequence values.

Training and inference score only the positions they need, through a
:class:`~rlcore.models.token_logprobs.TokenQuery` (chunked, no full-vocabulary logits).
"""

from __future__ import annotations

import torch

from rlcore.sdk import INPUT_IDS, ModelHandle, PackedBatch, TokenQuery


def on_device(handle: ModelHandle, data: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and cu_seqlens of ``data`` on the model's device."""
    return data.data[INPUT_IDS].to(handle.device), data.cu_seqlens(INPUT_IDS).to(handle.device)


def per_token_batch(data: PackedBatch, key: str, values: torch.Tensor) -> PackedBatch:
    """A batch holding ``values`` packed like ``data``'s token ids, under ``key``."""
    return PackedBatch(list(data.ids), {key: values.detach().cpu()},
                       {key: [list(s) for s in data.seqlens[INPUT_IDS]]})


def per_sequence_batch(data: PackedBatch, key: str, values: torch.Tensor) -> PackedBatch:
    """A batch holding one value per sequence of ``data`` under ``key``, same sample ids."""
    counts = [len(s) for s in data.seqlens[INPUT_IDS]]
    rows, start = [], 0
    for n in counts:
        rows.append([float(v) for v in values[start : start + n].tolist()])
        start += n
    return PackedBatch.from_sequences(data.ids, {key: rows}, dtypes={key: torch.float32})


def next_token_query(input_ids: torch.Tensor, which: torch.Tensor, **kwargs) -> TokenQuery:
    """A query scoring, at each position where ``which`` (bool ``[T]``) is set, the next token."""
    positions = which.nonzero().squeeze(-1)
    return TokenQuery(positions, torch.roll(input_ids, shifts=-1)[positions], **kwargs)


def scatter_positions(values: torch.Tensor, positions: torch.Tensor, total: int) -> torch.Tensor:
    """``values [N]`` placed at ``positions`` of a zero ``[total]`` tensor (differentiable)."""
    return values.new_zeros(total).index_add(0, positions, values)


def next_token_valid(cu_seqlens: torch.Tensor, total: int) -> torch.Tensor:
    """Bool ``[T]``: True where position t has a next token in the same sequence."""
    valid = torch.ones(total, dtype=torch.bool, device=cu_seqlens.device)
    valid[cu_seqlens[1:].long() - 1] = False
    return valid


def target_mask(loss_mask: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Bool ``[T]``: position t predicts a token whose ``loss_mask`` is set."""
    return torch.roll(loss_mask.bool(), shifts=-1) & next_token_valid(cu_seqlens, loss_mask.numel())


def per_sequence_sum(values: torch.Tensor, cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Sum ``values[T]`` over each packed sequence: ``[B]``."""
    seqlens = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    index = torch.repeat_interleave(torch.arange(seqlens.numel(), device=values.device), seqlens)
    return torch.zeros(seqlens.numel(), dtype=values.dtype, device=values.device).index_add_(0, index, values)

"""Packed-attention CPU fallbacks that were measured but that the model does not run.

``bench/attention_fallback.py`` times them against the two the model runs
(``rlcore.models.attention.sdpa_loop`` and ``sdpa_padded``, picked by ``sdpa_auto``);
tests/bench/test_attention_candidates.py checks that every one computes the same attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlcore.models.attention import causal_mask, sdpa_loop, sdpa_padded


def sdpa_block_diagonal(q, k, v, seqlens: list[int], scale: float,
                        sliding_window: int | None = None):
    """Candidate fallback: one SDPA over all T tokens with a block-diagonal causal mask."""
    seq_id = torch.repeat_interleave(torch.arange(len(seqlens), device=q.device),
                                     torch.tensor(seqlens, device=q.device))
    mask = (seq_id[:, None] == seq_id[None, :]) & causal_mask(len(seq_id), len(seq_id),
                                                              sliding_window, q.device)
    o = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                       attn_mask=mask, scale=scale,
                                       enable_gqa=q.shape[1] != k.shape[1])
    return o.transpose(0, 1)


def sdpa_bucketed(q, k, v, seqlens: list[int], scale: float,
                  sliding_window: int | None = None, max_waste: float = 0.3):
    """Candidate fallback: sort by length, pad each bucket of similar lengths, one SDPA per bucket.

    A bucket grows while its padded size stays within ``1 + max_waste`` of its real tokens.
    """
    order = sorted(range(len(seqlens)), key=lambda i: -seqlens[i])
    buckets: list[list[int]] = []
    for i in order:
        cur = buckets[-1] if buckets else None
        if cur and seqlens[cur[0]] * (len(cur) + 1) <= (1 + max_waste) * (
                sum(seqlens[j] for j in cur) + seqlens[i]):
            cur.append(i)
        else:
            buckets.append([i])
    if len(buckets) == 1:
        return sdpa_padded(q, k, v, seqlens, scale, sliding_window)
    out = q.new_empty(q.shape)
    for bucket in buckets:
        _padded_subset(out, q, k, v, seqlens, bucket, scale, sliding_window)
    return out


def sdpa_hybrid(q, k, v, seqlens: list[int], scale: float, sliding_window: int | None = None,
                long_len: int = 128):
    """Candidate fallback: sequences longer than ``long_len`` get one SDPA each, the rest one padded call.

    Long sequences skip padding and let the causal kernel skip masked blocks; short ones share
    one call so that per-call overhead does not dominate.
    """
    long = [i for i, n in enumerate(seqlens) if n > long_len]
    if not long or len(long) == len(seqlens):
        fn = sdpa_loop if long else sdpa_padded
        return fn(q, k, v, seqlens, scale, sliding_window)
    starts = _starts(seqlens)
    out = q.new_empty(q.shape)
    for i in long:
        sl = slice(starts[i], starts[i] + seqlens[i])
        out[sl] = sdpa_loop(q[sl], k[sl], v[sl], [seqlens[i]], scale, sliding_window)
    short = [i for i, n in enumerate(seqlens) if n <= long_len]
    _padded_subset(out, q, k, v, seqlens, short, scale, sliding_window)
    return out


def _starts(seqlens: list[int]) -> list[int]:
    """Offset of each packed sequence."""
    starts = [0]
    for n in seqlens[:-1]:
        starts.append(starts[-1] + n)
    return starts


def _padded_subset(out, q, k, v, seqlens, rows: list[int], scale, sliding_window) -> None:
    """Attend the sequences ``rows`` in one padded call and write them into ``out``."""
    starts = _starts(seqlens)
    idx = torch.cat([torch.arange(starts[i], starts[i] + seqlens[i], device=q.device) for i in rows])
    out[idx] = sdpa_padded(q[idx], k[idx], v[idx], [seqlens[i] for i in rows], scale, sliding_window)



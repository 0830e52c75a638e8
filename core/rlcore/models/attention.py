"""Packed (varlen) causal attention: flash-attn on CUDA when importable, exact SDPA elsewhere.

Tensors are packed: q ``[T, Hq, D]``, k/v ``[T, Hkv, D]``; ``cu_seqlens`` ``[B+1]`` marks where each
sequence starts. The exact CPU fallback was chosen by measuring candidates with
``bench/attention_fallback.py`` (see bench/README.md); the candidates the model does not run live there.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.cache
def _flash_varlen():
    """flash_attn_varlen_func, or None when flash-attn is not installed."""
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def check_cu_seqlens(cu_seqlens, total: int) -> list[int]:
    """The sequence lengths of ``cu_seqlens`` as a list; ValueError unless they tile ``total`` tokens.

    Reads the offsets on the host, so on CUDA it waits for the device: call it where batches
    are built or on CPU, not in every forward.
    """
    seqlens = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    if int(cu_seqlens[0]) != 0 or sum(seqlens) != total or min(seqlens, default=0) < 1:
        raise ValueError(f"cu_seqlens must start at 0, increase strictly and end at "
                         f"len(input_ids)={total}; got {cu_seqlens.tolist()}")
    return seqlens


def _flash_for(q):
    """flash_attn_varlen_func when it applies to ``q`` (CUDA, fp16/bf16, installed), else None."""
    return _flash_varlen() if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) else None


def varlen_attention(q, k, v, cu_seqlens, max_seqlen: int | None, scale: float,
                     sliding_window: int | None = None, seqlens: list[int] | None = None,
                     softcap: float | None = None):
    """Causal attention within each packed sequence; returns ``[T, Hq, D]``.

    flash-attn needs ``max_seqlen`` (read from ``cu_seqlens`` when None); the exact fallback
    needs ``seqlens`` as a list (read from ``cu_seqlens`` when None). Either read syncs on CUDA.
    """
    flash = _flash_for(q)
    if flash is not None:
        if max_seqlen is None:
            max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
        cu = cu_seqlens.to(torch.int32)
        window = (-1, -1) if sliding_window is None else (sliding_window - 1, 0)
        capped = {} if softcap is None else {"softcap": softcap}  # flash-attn >= 2.6
        return flash(q, k, v, cu, cu, max_seqlen, max_seqlen, softmax_scale=scale, causal=True,
                     window_size=window, **capped)
    if seqlens is None:
        seqlens = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    return sdpa_auto(q, k, v, seqlens, scale, sliding_window, softcap)


def sdpa_auto(q, k, v, seqlens: list[int], scale: float, sliding_window: int | None = None,
              softcap: float | None = None):
    """The exact fallback: one padded call when padding adds at most 30% (many similar
    sequences: RL rollouts), else one call per sequence (few or uneven ones)."""
    if len(seqlens) > 1 and max(seqlens) * len(seqlens) <= 1.3 * sum(seqlens):
        return sdpa_padded(q, k, v, seqlens, scale, sliding_window, softcap)
    return sdpa_loop(q, k, v, seqlens, scale, sliding_window, softcap)


def sdpa(q, k, v, mask, scale: float, softcap: float | None = None, causal: bool = False):
    """``F.scaled_dot_product_attention`` on ``[B, H, n, D]``; written out when scores are
    soft-capped (``cap * tanh(s / cap)``, Gemma 2), which SDPA cannot do."""
    gqa = q.shape[1] != k.shape[1]
    if softcap is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale,
                                              enable_gqa=gqa)
    if gqa:
        k, v = (t.repeat_interleave(q.shape[1] // k.shape[1], dim=1) for t in (k, v))
    scores = softcap * torch.tanh(q @ k.transpose(-1, -2) * scale / softcap)
    if causal:
        mask = causal_mask(q.shape[2], k.shape[2], None, q.device)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype) @ v


def sdpa_loop(q, k, v, seqlens: list[int], scale: float, sliding_window: int | None = None,
              softcap: float | None = None):
    """One causal SDPA call per sequence (no padding, many small calls).

    Inputs go in as 4-D ``[1, H, n, D]``: only 4-D takes CPU SDPA's fused flash kernel, and
    ``split`` (not slicing) keeps backward from allocating a full-size gradient per sequence.
    """
    outs = []
    for qs, ks, vs in zip(q.split(seqlens), k.split(seqlens), v.split(seqlens), strict=True):
        n = qs.shape[0]
        qs, ks, vs = (t.transpose(0, 1)[None] for t in (qs, ks, vs))
        if sliding_window is None or sliding_window >= n:
            o = sdpa(qs, ks, vs, None, scale, softcap, causal=True)
        else:
            o = sdpa(qs, ks, vs, causal_mask(n, n, sliding_window, q.device), scale, softcap)
        outs.append(o[0].transpose(0, 1))
    return torch.cat(outs) if len(outs) > 1 else outs[0].contiguous()


def sdpa_padded(q, k, v, seqlens: list[int], scale: float, sliding_window: int | None = None,
                softcap: float | None = None):
    """Scatter into a right-padded ``[B, H, L, D]`` batch, one SDPA, gather."""
    b, n_max = len(seqlens), max(seqlens)
    lens = torch.tensor(seqlens, device=q.device)
    valid = torch.arange(n_max, device=q.device)[None, :] < lens[:, None]  # [B, L]

    def pad(t):
        out = t.new_zeros(b, n_max, *t.shape[1:])
        out[valid] = t
        return out.transpose(1, 2)

    if min(seqlens) == n_max and (sliding_window is None or sliding_window >= n_max):
        o = sdpa(pad(q), pad(k), pad(v), None, scale, softcap, causal=True)  # no padding: no mask
        return o.transpose(1, 2).reshape(q.shape)
    mask = causal_mask(n_max, n_max, sliding_window, q.device)[None, None] & valid[:, None, None, :]
    mask |= ~valid[:, None, :, None]  # padded query rows see every key: finite, then dropped
    o = sdpa(pad(q), pad(k), pad(v), mask, scale, softcap)
    return o.transpose(1, 2)[valid]


def causal_mask(n_q: int, n_k: int, sliding_window: int | None, device) -> torch.Tensor:
    """Bool ``[n_q, n_k]`` (True = attend) for queries aligned to the last n_q keys."""
    qpos = torch.arange(n_k - n_q, n_k, device=device)[:, None]
    kpos = torch.arange(n_k, device=device)[None, :]
    mask = kpos <= qpos
    if sliding_window is not None:
        mask &= kpos > qpos - sliding_window
    return mask


class KVCache:
    """Preallocated, left-padded K/V of every layer for batched decoding.

    Row ``b`` holds its prompt right-aligned at columns ``[pad[b], n_prompt_max)``; each decode step
    writes one new column for every row, so all rows advance in lockstep.
    """

    def __init__(self, n_layers: int, prompt_lens: list[int], max_new_tokens: int, n_kv_heads: int,
                 head_dim: int, dtype, device):
        b, n_max = len(prompt_lens), max(prompt_lens)
        shape = (n_layers, b, n_kv_heads, n_max + max_new_tokens, head_dim)
        # Zeros, not empty: masked padding must hold finite values (0 * NaN would leak NaN).
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        lens = torch.tensor(prompt_lens, device=device)
        self.pad = n_max - lens  # [B] left padding of each row
        self.positions = lens.clone()  # next position id of each row
        self.cols = n_max  # filled columns
        # Prefill scatter indices: packed token j of row b goes to column pad[b] + j.
        self._rows = torch.repeat_interleave(torch.arange(b, device=device), lens)
        starts = torch.cumsum(lens, 0) - lens
        self._cols = torch.arange(int(lens.sum()), device=device) - starts[self._rows] + self.pad[self._rows]
        self._step_masks: dict[int | None, torch.Tensor | None] = {}

    def store_prefill(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Write the packed prompt keys/values ``[T, Hkv, D]`` of one layer."""
        self.k[layer][self._rows, :, self._cols] = k
        self.v[layer][self._rows, :, self._cols] = v

    def begin_step(self) -> None:
        """Forget the previous step's key masks (built once per window by :meth:`step_mask`)."""
        self._step_masks = {}

    def step_mask(self, window: int | None) -> torch.Tensor | None:
        """This step's key mask ``[B, 1, 1, cols]`` for layers with this sliding window; None: all keys."""
        if window not in self._step_masks:
            cols = torch.arange(self.cols + 1, device=self.pad.device)
            mask = cols[None, :] >= self.pad[:, None]  # [B, cols]: skip left padding
            if window is not None:
                mask &= cols[None, :] > self.cols - window
            self._step_masks[window] = None if bool(mask.all()) else mask[:, None, None, :]
        return self._step_masks[window]

    def attend(self, layer: int, q, k, v, scale: float, window: int | None = None,
               softcap: float | None = None) -> torch.Tensor:
        """Append this step's k/v ``[B, Hkv, D]`` and attend q ``[B, Hq, D]`` to the whole row."""
        c = self.cols
        self.k[layer, :, :, c] = k
        self.v[layer, :, :, c] = v
        keys, values = self.k[layer, :, :, : c + 1], self.v[layer, :, :, : c + 1]
        return sdpa(q[:, :, None], keys, values, self.step_mask(window), scale, softcap)[:, :, 0]

    def advance(self) -> None:
        """Mark the step's column as filled."""
        self.cols += 1
        self.positions += 1

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these rows (e.g. drop finished sequences) so later steps skip them."""
        self.k, self.v = self.k[:, rows], self.v[:, rows]
        self.pad, self.positions = self.pad[rows], self.positions[rows]


class PackedContext:
    """Attention over a packed batch; optionally fills a KVCache with the prompt keys/values.

    ``seqlens`` (the lengths as a list) is what the exact fallback splits by; without it, it
    and ``max_seqlen`` are read from ``cu_seqlens`` once, when a layer first needs them, so
    the flash-attn path costs one ``max().item()`` per forward, not a list of every length.
    """

    def __init__(self, cu_seqlens, seqlens: list[int] | None, cache: KVCache | None = None):
        self.cu_seqlens, self._seqlens = cu_seqlens, seqlens
        self._max_seqlen = max(seqlens) if seqlens else None
        self.cache = cache

    @property
    def seqlens(self) -> list[int]:
        if self._seqlens is None:
            self._seqlens = (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).tolist()
        return self._seqlens

    @property
    def max_seqlen(self) -> int:
        if self._max_seqlen is None:
            self._max_seqlen = int((self.cu_seqlens[1:] - self.cu_seqlens[:-1]).max())
        return self._max_seqlen

    def attend(self, layer: int, q, k, v, scale: float, window: int | None = None,
               softcap: float | None = None) -> torch.Tensor:
        """Causal attention within each sequence (and store k/v when prefilling a cache)."""
        if self.cache is not None:
            self.cache.store_prefill(layer, k, v)
        if _flash_for(q) is not None:
            return varlen_attention(q, k, v, self.cu_seqlens, self.max_seqlen, scale, window,
                                    softcap=softcap)
        return varlen_attention(q, k, v, self.cu_seqlens, None, scale, window, self.seqlens, softcap)

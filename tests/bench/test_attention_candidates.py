"""The benchmark-only attention candidates compute the model's attention, values and gradients."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest
import torch

from rlcore.models.attention import sdpa_loop, sdpa_padded

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from attention_candidates import sdpa_block_diagonal, sdpa_bucketed, sdpa_hybrid  # noqa: E402


@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize("kv_heads", [4, 1])
def test_candidates_agree_with_the_loop(window, kv_heads, packed_qkv):
    q, k, v, seqlens = packed_qkv(kv_heads)
    ref = sdpa_loop(q, k, v, seqlens, 0.35, window)
    hybrid = functools.partial(sdpa_hybrid, long_len=4)  # 5 and 9 alone, 1 and 3 padded together
    for fn in (sdpa_block_diagonal, sdpa_padded, sdpa_bucketed, sdpa_hybrid, hybrid):
        torch.testing.assert_close(fn(q, k, v, seqlens, 0.35, window), ref, atol=1e-5, rtol=0)


def test_candidate_gradients_agree():
    gen = torch.Generator().manual_seed(0)
    seqlens = [5, 1, 9, 3]
    q, k, v = (torch.randn(18, 4, 8, generator=gen, requires_grad=True) for _ in range(3))
    weights = torch.randn(18, 4, 8, generator=gen)

    def grads(fn):
        return torch.autograd.grad((fn(q, k, v, seqlens, 0.3, None) * weights).sum(), (q, k, v))

    ref = grads(sdpa_loop)
    for fn in (sdpa_block_diagonal, sdpa_bucketed, functools.partial(sdpa_hybrid, long_len=4)):
        for got, want in zip(grads(fn), ref, strict=True):
            torch.testing.assert_close(got, want, atol=1e-6, rtol=0)

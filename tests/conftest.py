"""Shared by every core test."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models on shared cores: one torch thread (fixture from rlcore.testing)."""


SEQLENS = [5, 1, 9, 3]


@pytest.fixture
def packed_qkv():
    """``make(kv_heads)``: seeded packed q ``[18, 4, 8]``, k and v ``[18, kv_heads, 8]`` of
    sequences of lengths ``SEQLENS``, for attention kernels to agree on."""
    def make(kv_heads: int):
        gen = torch.Generator().manual_seed(0)
        q = torch.randn(sum(SEQLENS), 4, 8, generator=gen)
        k, v = (torch.randn(sum(SEQLENS), kv_heads, 8, generator=gen) for _ in range(2))
        return q, k, v, list(SEQLENS)
    return make

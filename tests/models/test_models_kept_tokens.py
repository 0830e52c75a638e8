"""KeptTokens: exact round trips with dense masks, at the size of the smaller side of each row."""

from __future__ import annotations

import pytest
import torch

from rlcore.data.batch import PackedBatch
from rlcore.models.kept_tokens import KeptTokens


def random_mask(n: int, vocab: int, seed: int = 0) -> torch.Tensor:
    """Rows keeping from few to most tokens, one keeping all."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n, vocab, generator=gen) < torch.linspace(0.02, 0.98, n)[:, None]
    mask[:, 0] = True  # every row allows a token
    mask[n // 3] = True
    return mask


def test_round_trip_stores_the_smaller_side():
    mask = random_mask(11, 50)
    kept = KeptTokens.from_mask(mask)
    assert torch.equal(kept.to_mask(50), mask)
    cut = 50 - mask.sum(-1)
    assert kept.counts.tolist() == [0 if c == 0 else (-c if c < 50 - c else 50 - c)
                                    for c in cut.tolist()]
    assert kept.ids.numel() == int(torch.minimum(cut, 50 - cut).sum())
    assert kept.ids.dtype == kept.counts.dtype == torch.int32
    for s, e in [(0, 4), (3, 3), (4, 11), (10, 11)]:
        assert torch.equal(kept.to_mask(50, s, e), mask[s:e])


def test_select_split_cat_follow_the_rows():
    mask = random_mask(9, 20, seed=1)
    kept = KeptTokens.from_mask(mask)
    rows = torch.tensor([7, 0, 3, 3, 8])
    assert torch.equal(kept.select(rows).to_mask(20), mask[rows])
    parts = kept.split([2, 0, 7])
    assert [len(p) for p in parts] == [2, 0, 7]
    assert torch.equal(parts[2].to_mask(20), mask[2:])
    assert torch.equal(KeptTokens.cat(parts).to_mask(20), mask)


def test_a_row_allowing_nothing_and_an_old_dense_batch_are_errors():
    with pytest.raises(ValueError, match="allows no token"):
        KeptTokens.from_mask(torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="'logits_mask'.*no longer read"):
        KeptTokens.from_batch({"logits_mask": torch.ones(3, 5, dtype=torch.bool)})
    assert KeptTokens.from_batch({"packed_input_ids": torch.zeros(3)}) is None


def test_kept_ids_do_not_count_as_tokens_when_balancing():
    """A sample's cost stays its token count, however many ids sampling kept."""
    kept = KeptTokens.from_mask(random_mask(4, 30)).sequence_keys()
    b = PackedBatch.from_sequences(["a"], {"packed_input_ids": [[torch.arange(4)]],
                                           **{k: [[v]] for k, v in kept.items()}})
    assert b.num_tokens("logits_keep_ids") > 4 and b.sample_costs() == [4] and b.num_tokens() == 4

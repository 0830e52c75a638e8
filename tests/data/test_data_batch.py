"""PackedBatch: construction, validation, selection, combining and token-balanced splitting."""

from __future__ import annotations

import pickle
import random

import pytest
import torch

from rlcore.data.batch import BatchError, PackedBatch


def make_batch(lengths: list[list[int]], prefix: str = "s", with_rewards: bool = True) -> PackedBatch:
    """Sample i holds sequences of the given lengths; token values encode (sample, position)."""
    ids = [f"{prefix}{i}" for i in range(len(lengths))]
    seqs = [[[1000 * i + j * 100 + t for t in range(n)] for j, n in enumerate(s)]
            for i, s in enumerate(lengths)]
    sequences = {"packed_input_ids": seqs,
                 "loss_mask": [[[t % 2 == 0 for t in range(n)] for n in s] for s in lengths]}
    if with_rewards:
        sequences["rewards"] = [[[float(i) + j / 10] for j in range(len(s))]
                                for i, s in enumerate(lengths)]
    return PackedBatch.from_sequences(ids, sequences, metadata={"answer": [str(i) for i in
                                                                          range(len(lengths))]})


def test_from_sequences_packs_flat_with_lengths_and_dtypes():
    b = make_batch([[3, 2], [4, 1]])
    assert b.ids == ["s0", "s1"]
    assert b.data["packed_input_ids"].dtype == torch.int64
    assert b.data["loss_mask"].dtype == torch.bool
    assert b.data["rewards"].dtype == torch.float32
    assert b.seqlens["packed_input_ids"] == [[3, 2], [4, 1]]
    assert b.seqlens["rewards"] == [[1, 1], [1, 1]]
    assert b.data["packed_input_ids"].tolist() == [0, 1, 2, 100, 101, 1000, 1001, 1002, 1003, 1100]
    assert b.data["rewards"].tolist() == pytest.approx([0.0, 0.1, 1.0, 1.1])
    assert b.cu_seqlens("packed_input_ids").tolist() == [0, 3, 5, 9, 10]
    assert b.cu_seqlens("packed_input_ids").dtype == torch.int32
    assert b.cu_seqlens("rewards").tolist() == [0, 1, 2, 3, 4]
    assert [t.tolist() for t in b.sequences("packed_input_ids", 1)] == [[1000, 1001, 1002, 1003],
                                                                         [1100]]
    assert b.sample_dicts() == [{"answer": "0"}, {"answer": "1"}]
    assert len(b) == 2 and b.num_tokens() == 10 and b.num_tokens("rewards") == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(ids=["a", "a"], data={"x": torch.zeros(2)}, seqlens={"x": [[1], [1]]}),
         "unique"),
        (dict(ids=["a"], data={"x": torch.zeros(3)}, seqlens={"x": [[2]]}),
         "3 rows along dim 0 but its seqlens sum to 2"),
        (dict(ids=["a", "b"], data={"x": torch.zeros(2)}, seqlens={"x": [[2]]}),
         "seqlens cover 1 samples, ids 2"),
        (dict(ids=["a"], data={"x": torch.zeros(2)}, seqlens={"y": [[2]]}), "differ"),
        (dict(ids=["a"], data={"x": torch.zeros(2)}, seqlens={"x": [[2]]},
              metadata={"m": [1, 2]}), "metadata 'm' has 2 entries for 1 samples"),
        (dict(ids=["a"], data={"x": torch.tensor(1.0)}, seqlens={"x": [[1]]}), "0-d tensor"),
    ],
)
def test_validate_rejects_inconsistent_batches(kwargs, message):
    with pytest.raises(BatchError, match=message):
        PackedBatch(**kwargs)


def test_validate_catches_later_mutation():
    b = make_batch([[2], [3]])
    b.data["loss_mask"] = b.data["loss_mask"][:-1]
    with pytest.raises(BatchError, match="'loss_mask'"):
        b.validate()


def test_gather_reorders_every_key_and_metadata():
    b = make_batch([[3, 2], [4, 1], [1, 1]])
    g = b.gather([2, 0])
    assert g.ids == ["s2", "s0"]
    assert g.seqlens["packed_input_ids"] == [[1, 1], [3, 2]]
    assert g.data["packed_input_ids"].tolist() == [2000, 2100, 0, 1, 2, 100, 101]
    assert g.data["rewards"].tolist() == pytest.approx([2.0, 2.1, 0.0, 0.1])
    assert g.metadata["answer"] == ["2", "0"]
    with pytest.raises(BatchError, match="out of range"):
        b.gather([3])


def test_concat_then_by_ids_round_trips_and_unpack():
    b = make_batch([[3, 2], [4, 1], [1, 1], [5, 5]])
    parts = b.unpack()
    assert [len(p) for p in parts] == [1, 1, 1, 1]
    back = PackedBatch.concat(parts[::-1]).by_ids(b.ids)
    for k in b.data:
        assert torch.equal(back.data[k], b.data[k])
    assert back.seqlens == b.seqlens and back.metadata == b.metadata


def test_concat_rejects_mismatched_keys_and_duplicate_ids():
    a = make_batch([[2]], prefix="a")
    with pytest.raises(BatchError, match="keys"):
        PackedBatch.concat([a, make_batch([[2]], prefix="b", with_rewards=False)])
    with pytest.raises(BatchError, match="unique"):
        PackedBatch.concat([a, a])
    with pytest.raises(BatchError, match="empty"):
        PackedBatch.concat([])


def test_select_rename_to():
    b = make_batch([[3], [2]])
    s = b.select(["rewards"])
    assert s.keys == ["rewards"] and s.metadata == b.metadata
    r = b.rename({"packed_input_ids": "packed_seq"})
    assert "packed_seq" in r.data and "packed_input_ids" not in r.data
    assert r.seqlens["packed_seq"] == b.seqlens["packed_input_ids"]
    assert "packed_input_ids" in b.data  # the original is untouched
    with pytest.raises(BatchError, match="not in batch"):
        b.select(["nope"])
    with pytest.raises(BatchError, match="duplicate"):
        b.rename(rewards="loss_mask")
    m = b.to("meta")
    assert m.data["packed_input_ids"].device.type == "meta"
    assert m.cu_seqlens("packed_input_ids").device.type == "meta"


def test_update_merges_outputs_in_any_order():
    b = make_batch([[3], [2], [4]], with_rewards=False)
    out = PackedBatch.from_sequences(
        ["s2", "s0", "s1"], {"values": [[[2.0] * 4], [[0.0] * 3], [[1.0] * 2]]},
        metadata={"score": [2, 0, 1]},
    )
    b.update(out)
    assert b.data["values"].tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    assert b.metadata["score"] == [0, 1, 2]
    other = make_batch([[1]], prefix="x")
    with pytest.raises(BatchError, match="samples differ"):
        b.update(other)


def test_pickles_small_without_per_token_objects():
    b = make_batch([[500, 500]] * 64)
    blob = pickle.dumps(b)
    back = pickle.loads(blob)
    assert torch.equal(back.data["packed_input_ids"], b.data["packed_input_ids"])
    assert back.seqlens == b.seqlens
    # 64k int64 tokens + 64k bools ≈ 576 KB; per-token Python ints would be several MB.
    assert len(blob) < 1.2 * (b.data["packed_input_ids"].nbytes + b.data["loss_mask"].nbytes) + 20_000


def _check_partition(b: PackedBatch, parts: list[PackedBatch]) -> None:
    ids = [i for p in parts for i in p.ids]
    assert sorted(ids) == sorted(b.ids), "lost or duplicated samples"
    assert len(ids) == len(set(ids))
    assert all(len(p) > 0 for p in parts)
    costs = dict(zip(b.ids, b.sample_costs(), strict=True))
    loads = [sum(costs[i] for i in p.ids) for p in parts]
    assert max(loads) - min(loads) <= max(costs.values())
    # Token content survives: every sample's tokens equal the original's.
    for p in parts:
        for j, sid in enumerate(p.ids):
            i = b.ids.index(sid)
            for k in b.data:
                got = [t.tolist() for t in p.sequences(k, j)]
                assert got == [t.tolist() for t in b.sequences(k, i)]
        # Relative order kept inside a part.
        assert [b.ids.index(i) for i in p.ids] == sorted(b.ids.index(i) for i in p.ids)


@pytest.mark.parametrize("seed", range(40))
def test_split_balanced_properties(seed):
    rng = random.Random(seed)
    n_samples = rng.randint(1, 40)
    group = rng.choice([1, 2, 4])  # single sequences, pairs, GRPO groups
    lengths = [[rng.randint(1, 200) for _ in range(group)] for _ in range(n_samples)]
    b = make_batch(lengths)
    n = rng.randint(1, n_samples)
    parts = b.split_balanced(n)
    assert len(parts) == n
    _check_partition(b, parts)


def test_split_balanced_heavy_tail_and_errors():
    b = make_batch([[1000]] + [[10]] * 30)
    parts = b.split_balanced(4)
    _check_partition(b, parts)
    assert max(len(p) for p in parts) == 30 // 3  # the long sample's rank gets nothing else
    with pytest.raises(BatchError, match="non-empty"):
        make_batch([[3], [4]]).split_balanced(3)


@pytest.mark.parametrize("seed", range(20))
def test_minibatches_by_count_and_token_budget(seed):
    rng = random.Random(100 + seed)
    lengths = [[rng.randint(1, 50), rng.randint(1, 50)] for _ in range(rng.randint(2, 30))]
    b = make_batch(lengths)
    k = rng.randint(1, len(lengths))
    mbs = b.minibatches(k)
    assert len(mbs) == k
    _check_partition(b, mbs)
    budget = max(b.sample_costs()) + rng.randint(0, 100)
    mbs = b.minibatches(max_tokens=budget)
    _check_partition(b, mbs)
    assert all(mb.num_tokens("packed_input_ids") <= budget for mb in mbs)
    # Never more than twice the lower bound on the number of minibatches.
    assert len(mbs) <= max(1, 2 * -(-sum(b.sample_costs()) // budget))


def test_minibatches_argument_errors():
    b = make_batch([[5], [3]])
    with pytest.raises(BatchError, match="exactly one"):
        b.minibatches()
    with pytest.raises(BatchError, match="max_tokens=4"):
        b.minibatches(max_tokens=4)

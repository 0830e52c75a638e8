"""PackedBatch: variable-length sequences packed without padding, with per-sample lengths.

Each key holds one flat tensor (dim 0 runs over all tokens of all sequences of all
samples, in order) and ``seqlens[key][i][j]``: the length of sequence ``j`` of sample
``i``. A sample may hold several sequences (a chosen/rejected pair, a GRPO group).
A per-sequence scalar (a reward) is a key whose sequences all have length 1.

The object holds a handful of tensors plus small lists per sample/sequence, so it
pickles cheaply and moves between processes without per-token Python objects.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rlcore.data.trajectory import NOT_TOKENS


class BatchError(ValueError):
    """A PackedBatch is inconsistent or an operation was asked something impossible."""


def _balanced_partition(costs: Sequence[int], n: int) -> list[list[int]]:
    """Split item indices into ``n`` non-empty groups with near-equal cost sums.

    Largest-first greedy onto the least-loaded group: after every step the most and
    least loaded groups differ by at most the largest single cost. Ties go to the group
    holding fewer items, so the first ``n`` items land in ``n`` distinct groups.
    """
    if n < 1:
        raise BatchError(f"cannot split into {n} parts: need at least 1")
    if n > len(costs):
        raise BatchError(
            f"cannot split {len(costs)} samples into {n} non-empty parts; "
            "use a larger batch or fewer parts"
        )
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    heap = [(0, 0, g) for g in range(n)]  # (load, count, group)
    groups: list[list[int]] = [[] for _ in range(n)]
    for i in order:
        load, count, g = heapq.heappop(heap)
        groups[g].append(i)
        heapq.heappush(heap, (load + costs[i], count + 1, g))
    return [sorted(g) for g in groups]


@dataclass
class PackedBatch:
    """A batch of samples; every key is packed flat along dim 0 with per-sequence lengths."""

    ids: list[str]
    data: dict[str, torch.Tensor]
    seqlens: dict[str, list[list[int]]]
    metadata: dict[str, list[Any]] = field(default_factory=dict)

    # ------------------------------------------------------------------ building

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        self.seqlens = {k: [[int(x) for x in s] for s in v] for k, v in self.seqlens.items()}
        self.metadata = {k: list(v) for k, v in self.metadata.items()}
        self.validate()

    @classmethod
    def from_sequences(
        cls,
        ids: Sequence[str],
        sequences: Mapping[str, Sequence[Sequence[Any]]],
        dtypes: Mapping[str, torch.dtype] | None = None,
        metadata: Mapping[str, Sequence[Any]] | None = None,
    ) -> PackedBatch:
        """Build from ``sequences[key][sample] = [seq0, seq1, ...]``.

        Each sequence is a list, numpy array or 1-D tensor; a bare number counts as a
        length-1 sequence. ``dtypes`` defaults to int64 for integers, bool for bools
        and float32 otherwise.
        """
        dtypes = dict(dtypes or {})
        data: dict[str, torch.Tensor] = {}
        seqlens: dict[str, list[list[int]]] = {}
        for key, per_sample in sequences.items():
            if len(per_sample) != len(ids):
                raise BatchError(
                    f"key {key!r} has {len(per_sample)} samples but there are {len(ids)} ids"
                )
            flat: list[np.ndarray] = []
            lens: list[list[int]] = []
            for seqs in per_sample:
                sample_lens = []
                for seq in seqs:
                    arr = seq.numpy() if isinstance(seq, torch.Tensor) else np.asarray(seq)
                    arr = arr.reshape(-1) if arr.ndim == 0 else arr
                    flat.append(arr)
                    sample_lens.append(int(arr.shape[0]))
                lens.append(sample_lens)
            joined = np.concatenate(flat) if flat else np.zeros((0,), dtype=np.int64)
            dtype = dtypes.get(key)
            if dtype is None:
                if joined.dtype == np.bool_:
                    dtype = torch.bool
                elif np.issubdtype(joined.dtype, np.integer):
                    dtype = torch.int64
                else:
                    dtype = torch.float32
            data[key] = torch.from_numpy(np.ascontiguousarray(joined)).to(dtype)
            seqlens[key] = lens
        return cls(list(ids), data, seqlens, dict(metadata or {}))

    # ------------------------------------------------------------------ inspection

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def keys(self) -> list[str]:
        """The data keys, in insertion order."""
        return list(self.data)

    def num_tokens(self, key: str | None = None) -> int:
        """Total length of ``key`` (default: the longest key, ``NOT_TOKENS`` left out)."""
        if key is None:
            return max((int(v.shape[0]) for k, v in self.data.items() if k not in NOT_TOKENS),
                       default=0)
        return int(self.data[key].shape[0])

    def sample_costs(self, key: str | None = None) -> list[int]:
        """Tokens per sample: of ``key``, or by default the largest key for each sample (keys
        whose rows are not tokens, ``trajectory.NOT_TOKENS``, left out)."""
        keys = [key] if key is not None else [k for k in self.seqlens if k not in NOT_TOKENS]
        if not keys:
            return [0] * len(self)
        return [max(sum(self.seqlens[k][i]) for k in keys) for i in range(len(self))]

    def cu_seqlens(self, key: str) -> torch.Tensor:
        """int32 ``[n_sequences + 1]`` offsets of every sequence of ``key`` in its flat tensor."""
        lens = [x for s in self.seqlens[key] for x in s]
        out = torch.zeros(len(lens) + 1, dtype=torch.int32)
        if lens:
            out[1:] = torch.cumsum(torch.tensor(lens, dtype=torch.int64), 0).to(torch.int32)
        return out.to(self.data[key].device)

    def flat_seqlens(self, key: str) -> list[int]:
        """Lengths of every sequence of ``key`` in flat order."""
        return [x for s in self.seqlens[key] for x in s]

    def sequences(self, key: str, i: int) -> list[torch.Tensor]:
        """The sequences of sample ``i`` under ``key`` (views into the flat tensor)."""
        start = sum(sum(s) for s in self.seqlens[key][:i])
        out = []
        for n in self.seqlens[key][i]:
            out.append(self.data[key][start : start + n])
            start += n
        return out

    def sample_dicts(self) -> list[dict[str, Any]]:
        """Per-sample metadata as dicts (what reward functions receive as ``samples``)."""
        return [{k: v[i] for k, v in self.metadata.items()} for i in range(len(self))]

    # ------------------------------------------------------------------ checks

    def validate(self) -> PackedBatch:
        """Check that ids, lengths, tensors and metadata agree; raise BatchError if not."""
        n = len(self.ids)
        if len(set(self.ids)) != n:
            dup = sorted({i for i in self.ids if self.ids.count(i) > 1})
            raise BatchError(f"sample ids must be unique within a batch; repeated: {dup[:5]}")
        if set(self.data) != set(self.seqlens):
            raise BatchError(
                f"data keys {sorted(self.data)} and seqlens keys {sorted(self.seqlens)} differ"
            )
        for key, t in self.data.items():
            if not isinstance(t, torch.Tensor):
                raise BatchError(f"key {key!r}: expected a torch.Tensor, got {type(t).__name__}")
            lens = self.seqlens[key]
            if len(lens) != n:
                raise BatchError(f"key {key!r}: seqlens cover {len(lens)} samples, ids {n}")
            if t.dim() == 0:
                raise BatchError(f"key {key!r}: a 0-d tensor cannot be packed; use shape [1]")
            total = 0
            for i, s in enumerate(lens):
                if any(x < 0 for x in s):
                    raise BatchError(f"key {key!r}: sample {i} has a negative length {s}")
                total += sum(s)
            if int(t.shape[0]) != total:
                raise BatchError(
                    f"key {key!r}: tensor has {int(t.shape[0])} rows along dim 0 but its "
                    f"seqlens sum to {total}"
                )
        for key, values in self.metadata.items():
            if len(values) != n:
                raise BatchError(f"metadata {key!r} has {len(values)} entries for {n} samples")
        return self

    # ------------------------------------------------------------------ selection

    def _sample_offsets(self, key: str) -> np.ndarray:
        totals = np.fromiter((sum(s) for s in self.seqlens[key]), dtype=np.int64, count=len(self))
        return np.concatenate([[0], np.cumsum(totals)])

    def gather(self, indices: Sequence[int]) -> PackedBatch:
        """A new batch holding samples ``indices`` of this one, in that order."""
        indices = [int(i) for i in indices]
        for i in indices:
            if not -len(self) <= i < len(self):
                raise BatchError(f"sample index {i} out of range for a batch of {len(self)}")
        indices = [i % len(self) for i in indices] if len(self) else indices
        data, seqlens = {}, {}
        for key, t in self.data.items():
            offsets = self._sample_offsets(key)
            pieces = [t[offsets[i] : offsets[i + 1]] for i in indices]
            data[key] = torch.cat(pieces, 0) if pieces else t[:0].clone()
            seqlens[key] = [list(self.seqlens[key][i]) for i in indices]
        metadata = {k: [v[i] for i in indices] for k, v in self.metadata.items()}
        return PackedBatch([self.ids[i] for i in indices], data, seqlens, metadata)

    def by_ids(self, ids: Sequence[str]) -> PackedBatch:
        """A new batch holding the samples named ``ids``, in that order."""
        where = {sid: i for i, sid in enumerate(self.ids)}
        missing = [i for i in ids if i not in where]
        if missing:
            raise BatchError(f"sample ids not in batch: {missing[:5]}")
        return self.gather([where[i] for i in ids])

    def unpack(self) -> list[PackedBatch]:
        """One single-sample batch per sample."""
        return [self.gather([i]) for i in range(len(self))]

    def select(self, keys: Iterable[str], metadata: bool = True) -> PackedBatch:
        """A new batch with only ``keys`` (tensors shared, not copied)."""
        keys = list(keys)
        missing = [k for k in keys if k not in self.data]
        if missing:
            raise BatchError(f"keys {missing} not in batch; it has {self.keys}")
        return PackedBatch(
            list(self.ids),
            {k: self.data[k] for k in keys},
            {k: self.seqlens[k] for k in keys},
            dict(self.metadata) if metadata else {},
        )

    def rename(self, mapping: Mapping[str, str] | None = None, **kw: str) -> PackedBatch:
        """A new batch with keys renamed ``old -> new``; others kept."""
        mapping = {**(mapping or {}), **kw}
        missing = [k for k in mapping if k not in self.data]
        if missing:
            raise BatchError(f"cannot rename keys {missing}: not in batch {self.keys}")
        new_keys = [mapping.get(k, k) for k in self.data]
        if len(set(new_keys)) != len(new_keys):
            raise BatchError(f"renaming {mapping} would give duplicate keys {new_keys}")
        return PackedBatch(
            list(self.ids),
            {mapping.get(k, k): v for k, v in self.data.items()},
            {mapping.get(k, k): v for k, v in self.seqlens.items()},
            dict(self.metadata),
        )

    def to(self, device: str | torch.device, non_blocking: bool = False) -> PackedBatch:
        """A new batch with every tensor on ``device``."""
        return PackedBatch(
            list(self.ids),
            {k: v.to(device, non_blocking=non_blocking) for k, v in self.data.items()},
            self.seqlens,
            dict(self.metadata),
        )

    # ------------------------------------------------------------------ combining

    @classmethod
    def concat(cls, batches: Sequence[PackedBatch]) -> PackedBatch:
        """Join batches sample-wise. They must hold the same keys and metadata keys."""
        batches = list(batches)
        if not batches:
            raise BatchError("cannot concatenate an empty list of batches")
        keys, meta_keys = set(batches[0].data), set(batches[0].metadata)
        for b in batches[1:]:
            if set(b.data) != keys:
                raise BatchError(f"cannot concatenate batches with keys {sorted(keys)} "
                                 f"and {sorted(b.data)}")
            if set(b.metadata) != meta_keys:
                raise BatchError(f"cannot concatenate batches with metadata {sorted(meta_keys)} "
                                 f"and {sorted(b.metadata)}")
        first = batches[0]
        return cls(
            [i for b in batches for i in b.ids],
            {k: torch.cat([b.data[k] for b in batches], 0) for k in first.data},
            {k: [s for b in batches for s in b.seqlens[k]] for k in first.data},
            {k: [v for b in batches for v in b.metadata[k]] for k in first.metadata},
        )

    def update(self, other: PackedBatch) -> PackedBatch:
        """Merge ``other``'s keys and metadata into this batch in place (same ids, any order).

        Used to add a model call's outputs to the batch. Existing keys are overwritten.
        """
        if set(other.ids) != set(self.ids) or len(other.ids) != len(self.ids):
            raise BatchError(
                f"cannot update a batch of ids {self.ids[:4]}... with ids {other.ids[:4]}...: "
                "the samples differ"
            )
        if other.ids != self.ids:
            other = other.by_ids(self.ids)
        self.data.update(other.data)
        self.seqlens.update(other.seqlens)
        self.metadata.update(other.metadata)
        return self.validate()

    # ------------------------------------------------------------------ splitting

    def partition(self, n: int, key: str | None = None) -> list[list[int]]:
        """Sample indices of ``n`` non-empty groups balanced by tokens (see split_balanced)."""
        return _balanced_partition(self.sample_costs(key), n)

    def split_balanced(self, n: int, key: str | None = None) -> list[PackedBatch]:
        """Split into ``n`` non-empty parts (data-parallel ranks) balanced by tokens.

        Samples stay whole, and keep their relative order inside each part. The token
        counts of any two parts differ by at most one sample's tokens. Restore the
        original order after a round trip with ``PackedBatch.concat(parts).by_ids(ids)``.
        """
        return [self.gather(g) for g in self.partition(n, key)]

    def minibatches(
        self, n: int | None = None, max_tokens: int | None = None, key: str | None = None
    ) -> list[PackedBatch]:
        """Split into minibatches balanced by tokens: ``n`` of them, or as few as fit ``max_tokens``.

        With ``max_tokens`` every minibatch holds at most that many tokens and the
        minibatches are balanced; a sample longer than ``max_tokens`` is an error.
        """
        if (n is None) == (max_tokens is None):
            raise BatchError("minibatches() needs exactly one of n or max_tokens")
        if n is not None:
            return self.split_balanced(n, key)
        assert max_tokens is not None
        costs = self.sample_costs(key)
        too_long = [self.ids[i] for i, c in enumerate(costs) if c > max_tokens]
        if too_long:
            raise BatchError(
                f"samples {too_long[:5]} hold more than max_tokens={max_tokens} tokens "
                f"(longest {max(costs)}); raise max_tokens"
            )
        if not costs:
            return []
        # The fewest balanced groups that all fit: start from the lower bound and grow.
        k = max(1, -(-sum(costs) // max_tokens))
        while True:
            groups = _balanced_partition(costs, min(k, len(costs)))
            if all(sum(costs[i] for i in g) <= max_tokens for g in groups):
                return [self.gather(g) for g in groups]
            k += 1

    def __repr__(self) -> str:
        keys = ", ".join(
            f"{k}:{tuple(v.shape)}{str(v.dtype).replace('torch.', '')}" for k, v in self.data.items()
        )
        return f"PackedBatch({len(self)} samples; {keys}; metadata={sorted(self.metadata)})"

"""The tokens sampling allowed at each position, stored at the size of what was cut or kept.

Per position, ``counts[i]`` says what ``ids`` (flat, position by position) holds for it:
``0`` nothing was cut (nothing stored), ``c > 0`` the ``c`` ids that were kept, ``c < 0`` the
``-c`` ids that were cut (e.g. eos before ``min_new_tokens``). Each row stores the smaller
side, so a top-k row costs ``k`` ids and a row that only forbids eos costs one. Ids are exact
(no logit thresholds, so ties and recomputation noise cannot change the replayed set), and
any engine that reports kept ids or a dense mask can fill it. Dense rows are rebuilt only
for a chunk of positions at a time (:meth:`KeptTokens.to_mask`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rlcore.data.trajectory import LEGACY_LOGITS_MASK, LOGITS_KEEP_COUNTS, LOGITS_KEEP_IDS


@dataclass
class KeptTokens:
    """Allowed tokens of ``counts.numel()`` positions: int32 ``ids [K]`` and ``counts [N]``."""

    ids: torch.Tensor
    counts: torch.Tensor

    def __len__(self) -> int:
        return self.counts.numel()

    @classmethod
    def empty(cls, n: int, device: torch.device | str = "cpu") -> KeptTokens:
        """``n`` positions where nothing was cut."""
        return cls(torch.zeros(0, dtype=torch.int32, device=device),
                   torch.zeros(n, dtype=torch.int32, device=device))

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> KeptTokens:
        """From a bool ``[N, vocab]`` mask (True = allowed); a row must allow some token."""
        vocab = mask.shape[-1]
        kept = mask.sum(-1)
        if bool((kept == 0).any()):
            raise ValueError("a logits mask row allows no token: sampling always keeps one")
        cut = vocab - kept
        store_cut = cut < kept
        rows = torch.where(store_cut[:, None], ~mask, mask) & (cut > 0)[:, None]
        counts = torch.where(cut == 0, 0, torch.where(store_cut, -cut, kept))
        return cls(rows.nonzero()[:, 1].to(torch.int32), counts.to(torch.int32))

    @classmethod
    def cat(cls, parts: Sequence[KeptTokens]) -> KeptTokens:
        """The positions of ``parts`` one after another."""
        return cls(torch.cat([p.ids for p in parts]), torch.cat([p.counts for p in parts]))

    def offsets(self) -> torch.Tensor:
        """int64 ``[N+1]``: where each position's ids start in ``ids``."""
        n = self.counts.abs().long()
        return torch.cat([n.new_zeros(1), n.cumsum(0)])

    def any_cut(self) -> bool:
        """Whether any position had tokens cut."""
        return bool((self.counts != 0).any())

    def select(self, rows: torch.Tensor) -> KeptTokens:
        """The positions ``rows`` (int ``[M]``), in that order."""
        rows = rows.to(self.counts.device).long()
        n = self.counts.abs().long()[rows]
        starts = self.offsets()[rows]
        seg = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), n)
        within = torch.arange(seg.numel(), device=rows.device) - (n.cumsum(0) - n)[seg]
        return KeptTokens(self.ids[starts[seg] + within], self.counts[rows])

    def split(self, sizes: Sequence[int]) -> list[KeptTokens]:
        """Consecutive groups of ``sizes`` positions."""
        bounds = self.offsets()[torch.tensor([0, *sizes]).cumsum(0)].tolist()
        counts = self.counts.split(list(sizes))
        return [KeptTokens(self.ids[bounds[i]:bounds[i + 1]], c) for i, c in enumerate(counts)]

    def to(self, device: torch.device | str) -> KeptTokens:
        return KeptTokens(self.ids.to(device), self.counts.to(device))

    def to_mask(self, vocab: int, start: int = 0, end: int | None = None) -> torch.Tensor:
        """Bool ``[end - start, vocab]`` (True = allowed) of positions ``start:end`` only."""
        end = len(self) if end is None else end
        counts = self.counts[start:end].long()
        off = self.offsets()
        ids = self.ids[int(off[start]):int(off[end])].long()
        row = torch.repeat_interleave(torch.arange(end - start, device=counts.device), counts.abs())
        mask = (counts <= 0)[:, None].repeat(1, vocab)
        mask[row, ids] = (counts > 0)[row]
        return mask

    def sequence_keys(self) -> dict[str, torch.Tensor]:
        """This sequence's two batch keys (``counts`` has one entry per token)."""
        return {LOGITS_KEEP_IDS: self.ids, LOGITS_KEEP_COUNTS: self.counts}

    @classmethod
    def from_batch(cls, data: dict[str, torch.Tensor]) -> KeptTokens | None:
        """The kept tokens of a batch's ``data`` (per token ``[T]``), or None when it has none."""
        if LEGACY_LOGITS_MASK in data:
            raise ValueError(
                f"this batch holds a dense {LEGACY_LOGITS_MASK!r} [T, vocab], which is no longer "
                f"read: store {LOGITS_KEEP_IDS!r} and {LOGITS_KEEP_COUNTS!r} instead "
                "(KeptTokens.from_mask(mask).sequence_keys())")
        if LOGITS_KEEP_COUNTS not in data:
            return None
        return cls(data[LOGITS_KEEP_IDS], data[LOGITS_KEEP_COUNTS])

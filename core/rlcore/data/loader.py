"""BatchIterator: seeded, deterministic, resumable iteration over a dataset in PackedBatches.

An epoch's order depends only on ``(seed, epoch)``, so the position ``(epoch, batch)``
is the whole state: ``state_dict()`` after receiving a batch and
``load_state_dict()`` in a fresh iterator gives the same remaining batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from rlcore.data.batch import PackedBatch
from rlcore.errors import ConfigError


class BatchableDataset(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> Any: ...
    def collate(self, samples: list[Any]) -> PackedBatch: ...


class BatchIterator:
    """Batches of ``batch_size`` samples, or of at most ``max_tokens`` tokens, for ``epochs``.

    ``shuffle``/``seed`` default to the dataset config's. A final short batch is kept
    unless ``drop_last``. ``epochs=None`` repeats forever. Batches never span epochs.
    """

    STATE_VERSION = 1

    def __init__(
        self,
        dataset: BatchableDataset,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        *,
        shuffle: bool | None = None,
        seed: int | None = None,
        epochs: int | None = 1,
        drop_last: bool = False,
    ):
        if (batch_size is None) == (max_tokens is None):
            raise ConfigError("give exactly one of batch_size (samples) or max_tokens (tokens)")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size: expected at least 1, got {batch_size}")
        if epochs is not None and epochs < 1:
            raise ConfigError(f"epochs: expected at least 1 or null, got {epochs}")
        cfg = getattr(dataset, "config", None)
        self.dataset = dataset
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.shuffle = shuffle if shuffle is not None else bool(getattr(cfg, "shuffle", True))
        self.seed = seed if seed is not None else int(getattr(cfg, "seed", 0))
        self.epochs = epochs
        self.drop_last = drop_last
        if max_tokens is not None:
            longest = max((self._tokens(i) for i in range(len(dataset))), default=0)
            if longest > max_tokens:
                raise ConfigError(
                    f"max_tokens={max_tokens} is smaller than the longest sample ({longest} "
                    "tokens); raise max_tokens or lower the dataset's max_length"
                )
        self.epoch = 0
        self.batch_in_epoch = 0
        self._plan_epoch: int | None = None
        self._plan: list[list[int]] = []

    def _tokens(self, i: int) -> int:
        if hasattr(self.dataset, "num_tokens"):
            return int(self.dataset.num_tokens(i))
        return int(self.dataset[i].num_tokens)

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices of ``epoch`` in visiting order."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def plan(self, epoch: int) -> list[list[int]]:
        """The sample indices of every batch of ``epoch``."""
        if self._plan_epoch == epoch:
            return self._plan
        order = [int(i) for i in self.order(epoch)]
        batches: list[list[int]] = []
        if self.batch_size is not None:
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            if self.drop_last and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
        else:
            assert self.max_tokens is not None
            current: list[int] = []
            used = 0
            for i in order:
                n = self._tokens(i)
                if current and used + n > self.max_tokens:
                    batches.append(current)
                    current, used = [], 0
                current.append(i)
                used += n
            if current and not self.drop_last:
                batches.append(current)
        self._plan_epoch, self._plan = epoch, batches
        return batches

    def __len__(self) -> int:
        """Batches per epoch (for a token budget: of the current epoch)."""
        return len(self.plan(self.epoch))

    def __iter__(self) -> Iterator[PackedBatch]:
        while self.epochs is None or self.epoch < self.epochs:
            batches = self.plan(self.epoch)
            if not batches:
                raise ConfigError(
                    f"an epoch of {len(self.dataset)} samples yields no batch with "
                    f"batch_size={self.batch_size} and drop_last=True (with several ranks an "
                    "epoch's short last batch is dropped); lower run.batch_size or add rows"
                )
            while self.batch_in_epoch < len(batches):
                indices = batches[self.batch_in_epoch]
                self.batch_in_epoch += 1
                yield self.dataset.collate([self.dataset[i] for i in indices])
            self.epoch += 1
            self.batch_in_epoch = 0

    def state_dict(self) -> dict[str, Any]:
        """The position after the last batch handed out, plus what must match on resume."""
        return {
            "version": self.STATE_VERSION,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_samples": len(self.dataset),
            "batch_size": self.batch_size,
            "max_tokens": self.max_tokens,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``'s position; refuse when the data or batching changed."""
        mine = self.state_dict()
        for key in ("seed", "shuffle", "num_samples", "batch_size", "max_tokens", "drop_last"):
            if state.get(key) != mine[key]:
                raise ConfigError(
                    f"cannot resume the data iterator: {key} was {state.get(key)!r} when the "
                    f"state was saved and is {mine[key]!r} now; resume with the same dataset "
                    "and batching settings"
                )
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])

"""Base of map-style datasets that tokenize rows up front and collate into PackedBatch.

A subclass names its embedded rows and turns raw rows into :class:`Sample` objects;
the base reads the file (or the embedded task), applies ``max_rows``, keeps a
:class:`LoadSummary` of what was truncated or dropped, and refuses a dataset whose
rows are all too long.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from rlcore.data.batch import PackedBatch
from rlcore.data.config import DatasetConfig
from rlcore.data.readers import read_source
from rlcore.data.sources import Row, RowRef, rows_from_dicts
from rlcore.errors import DataError

log = logging.getLogger("rlcore.data")


@dataclass
class Sample:
    """One tokenized sample: ``sequences[key]`` lists its sequences as numpy arrays."""

    id: str
    sequences: dict[str, list[np.ndarray]]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        """Tokens of the sample's longest key (what batching by token budget counts)."""
        return max((sum(len(s) for s in seqs) for seqs in self.sequences.values()), default=0)


@dataclass
class LoadSummary:
    """What happened to the rows of a source: kept, truncated, dropped and why."""

    source: str
    rows: int = 0
    samples: int = 0
    truncated: int = 0
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    truncated_examples: list[str] = field(default_factory=list)
    longest: int = 0  # longest sequence seen before truncation, in tokens

    def drop(self, reason: str, ref: RowRef) -> None:
        """Count a dropped row."""
        self.dropped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(f"{ref.unit} {ref.number}")

    def truncate(self, ref: RowRef) -> None:
        """Count a row whose prompt was cut."""
        self.truncated += 1
        if len(self.truncated_examples) < 3:
            self.truncated_examples.append(f"{ref.unit} {ref.number}")

    def __str__(self) -> str:
        text = f"{self.source}: {self.rows} rows → {self.samples} samples"
        if self.truncated:
            text += (f"; {self.truncated} prompts truncated from the left "
                     f"(e.g. {', '.join(self.truncated_examples)})")
        for reason, count in self.dropped.items():
            text += f"; {count} dropped: {reason} (e.g. {', '.join(self.examples[reason])})"
        return text


def fit_prompt(
    prompt: np.ndarray,
    answer_len: int,
    config: DatasetConfig,
    bos_id: int | None,
    extra: Sequence[np.ndarray] = (),
) -> tuple[list[np.ndarray] | None, str | None]:
    """Apply the length limits to a prompt that precedes answers of ``answer_len`` tokens.

    ``extra`` are arrays aligned with ``prompt`` (e.g. its loss mask) cut the same way.
    Returns ``([prompt, *extra], None)`` when it fits (possibly cut from the left,
    keeping a leading ``bos``), or ``(None, reason)`` when the row must be dropped.
    """
    budget = config.max_length - answer_len
    if config.max_prompt_length is not None:
        budget = min(budget, config.max_prompt_length)
    if len(prompt) <= budget:
        return [prompt, *extra], None
    if config.max_length - answer_len < 1:
        return None, f"answer alone reaches max_length={config.max_length}"
    if config.truncation == "drop":
        if config.max_prompt_length is not None and len(prompt) > config.max_prompt_length:
            return None, f"prompt longer than max_prompt_length={config.max_prompt_length}"
        return None, f"longer than max_length={config.max_length}"
    keep_bos = bos_id is not None and len(prompt) > 0 and int(prompt[0]) == bos_id
    if keep_bos and budget < 2:
        return None, f"answer leaves no room for the prompt within max_length={config.max_length}"

    def cut(a: np.ndarray) -> np.ndarray:
        if keep_bos:
            return np.concatenate([a[:1], a[len(a) - (budget - 1):]])
        return a[len(a) - budget:]

    return [cut(prompt), *[cut(e) for e in extra]], "truncated"


class PackedDataset:
    """A map-style dataset of tokenized samples; ``collate`` packs them into a PackedBatch.

    Subclasses set ``kind`` and ``dtypes``, and implement ``embedded_rows`` and
    ``build_sample``. Build one as ``cls(config, tokenizer)``.
    """

    kind: ClassVar[str] = "dataset"
    # torch dtype of each key that samples hold.
    dtypes: ClassVar[dict[str, torch.dtype]] = {}

    def __init__(self, config: DatasetConfig, tokenizer: Any):
        config.check()
        self.config = config
        self.tokenizer = tokenizer
        rows = self.load_rows()
        self.summary = LoadSummary(source=self.source_name, rows=len(rows))
        self.samples: list[Sample] = self.build_samples(rows)
        self.summary.samples = len(self.samples)
        if not self.samples:
            raise DataError(self._all_dropped_message())
        if self.summary.truncated or self.summary.dropped:
            log.warning("%s", self.summary)
        else:
            log.info("%s", self.summary)

    # -------------------------------------------------------------- rows

    @property
    def source_name(self) -> str:
        return self.config.path if self.config.path is not None else f"<embedded {self.kind}>"

    def load_rows(self) -> list[Row]:
        """The raw rows: the file at ``config.path``, or the embedded task."""
        if self.config.path is None:
            rows = rows_from_dicts(self.embedded_rows(), self.source_name)
        else:
            rows = read_source(self.config.path, getattr(self.config, "format", None),
                               self.config)
        if self.config.max_rows is not None:
            rows = rows[: self.config.max_rows]
        return rows

    def embedded_rows(self) -> list[dict[str, Any]]:
        """Rows of the embedded task for this dataset kind."""
        raise NotImplementedError(f"{type(self).__name__} has no embedded task; set 'path'")

    def build_samples(self, rows: list[Row]) -> list[Sample]:
        """Tokenize and fit every row; subclasses may batch the tokenization."""
        out = []
        for row in rows:
            out.extend(self.build_sample(row))
        return out

    def build_sample(self, row: Row) -> list[Sample]:
        """Zero (dropped), one or several samples from one row."""
        raise NotImplementedError

    def carried(self, row: Row, consumed: Sequence[str]) -> dict[str, Any]:
        """The row fields that go to batch metadata."""
        if self.config.carry_fields is None:
            return {k: v for k, v in row.values.items() if k not in consumed}
        return {k: row.values.get(k) for k in self.config.carry_fields}

    def _all_dropped_message(self) -> str:
        s = self.summary
        reasons = "; ".join(f"{r} (e.g. {', '.join(s.examples[r])})" for r in s.dropped)
        return (
            f"{self.source_name}: all {s.rows} rows are too long and were dropped: {reasons}. "
            f"The longest sequence has {s.longest} tokens. Raise max_length "
            f"(now {self.config.max_length})"
            + (f" or max_prompt_length (now {self.config.max_prompt_length})"
               if self.config.max_prompt_length is not None else "")
            + (", or set truncation='truncate_prompt_left'"
               if self.config.truncation == "drop" else "")
        )

    # -------------------------------------------------------------- map-style API

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    def num_tokens(self, i: int) -> int:
        """Tokens of sample ``i`` (used by batching under a token budget)."""
        return self.samples[i].num_tokens

    def collate(self, samples: Sequence[Sample]) -> PackedBatch:
        """Pack samples into one batch (no padding)."""
        keys = list(samples[0].sequences) if samples else list(self.dtypes)
        meta_keys: list[str] = []
        for s in samples:
            meta_keys.extend(k for k in s.metadata if k not in meta_keys)
        return PackedBatch.from_sequences(
            [s.id for s in samples],
            {k: [s.sequences[k] for s in samples] for k in keys},
            dtypes={k: self.dtypes[k] for k in keys if k in self.dtypes},
            metadata={k: [s.metadata.get(k) for s in samples] for k in meta_keys},
        )

"""Packed batches, tokenizer helpers, the dataset base, the batch iterator and the embedded task.

Submodules that need torch import it themselves; importing this package does not.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "PackedBatch": "rlcore.data.batch",
    "BatchIterator": "rlcore.data.loader",
    "PackedDataset": "rlcore.data.dataset",
    "Sample": "rlcore.data.dataset",
    "DatasetConfig": "rlcore.data.config",
    "load_tokenizer": "rlcore.data.tokenizer",
    "embedded_tokenizer": "rlcore.data.embedded",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlcore.data' has no attribute {name!r}")

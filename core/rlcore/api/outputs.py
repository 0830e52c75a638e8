"""What a module's ``forward_step`` returned, packed as a PackedBatch for its input's samples.

Torch-only: the engine's adapter and ``Module.inference`` outside a flow both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rlcore.data.batch import PackedBatch
from rlcore.errors import RlcoreError


def pack_outputs(data: PackedBatch, out: Any, where: str) -> PackedBatch:
    """What ``forward_step`` returned, as a PackedBatch for ``data``'s samples (tensors on CPU).

    Accepts a PackedBatch, or a dict whose values are: a tensor packed like one of
    ``data``'s keys (same token count: that key's lengths are used), a tensor with
    one value per sample, or a list with one entry per sample (one sequence, or a
    list of sequences).
    """
    if isinstance(out, PackedBatch):
        return out.to("cpu")
    if not isinstance(out, Mapping):
        raise RlcoreError(
            f"{where} must return a dict of outputs or a PackedBatch, got {type(out).__name__}"
        )
    n = len(data)
    tensors: dict[str, torch.Tensor] = {}
    seqlens: dict[str, list[list[int]]] = {}
    per_sample: dict[str, list[list[Any]]] = {}
    for key, value in out.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.dim() == 0:
                raise RlcoreError(f"{where}: output {key!r} is a 0-d tensor; return one value "
                                  "per sample or per token")
            lens = _packing_like(data, int(value.shape[0]))
            if lens is None:
                raise RlcoreError(
                    f"{where}: output {key!r} has {int(value.shape[0])} rows, which matches "
                    f"neither the {n} samples nor the token count of an input key "
                    f"({ {k: data.num_tokens(k) for k in data.keys} }); return a list with "
                    "one sequence per sample instead"
                )
            tensors[key], seqlens[key] = value, lens
        elif isinstance(value, list | tuple):
            if len(value) != n:
                raise RlcoreError(f"{where}: output {key!r} lists {len(value)} entries for "
                                  f"{n} samples")
            per_sample[key] = [_sequences(v) for v in value]
        else:
            raise RlcoreError(f"{where}: output {key!r} is a {type(value).__name__}; return a "
                              "tensor or a list with one entry per sample")
    batch = PackedBatch(list(data.ids), tensors, seqlens)
    if per_sample:
        batch.update(PackedBatch.from_sequences(data.ids, per_sample))
    return batch


def _packing_like(data: PackedBatch, rows: int) -> list[list[int]] | None:
    for k in data.keys:
        if data.num_tokens(k) == rows:
            return [list(s) for s in data.seqlens[k]]
    if rows == len(data):
        return [[1] for _ in range(rows)]
    return None


def _sequences(entry: Any) -> list[Any]:
    """One sample's entry as a list of sequences."""
    if isinstance(entry, torch.Tensor):
        return [entry.detach().cpu()]
    if isinstance(entry, np.ndarray) or np.isscalar(entry):
        return [entry]
    if isinstance(entry, list | tuple):
        if entry and all(isinstance(e, torch.Tensor | np.ndarray | list | tuple) for e in entry):
            return [e.detach().cpu() if isinstance(e, torch.Tensor) else e for e in entry]
        return [list(entry)]
    raise RlcoreError(f"cannot pack a {type(entry).__name__} as a sequence")

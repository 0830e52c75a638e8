"""The ModelInterface over a user :class:`~rlcore.api.Module`, and output packing.

The executor calls ``ModuleInterface`` like any registered interface; it binds
the role's handle to the module, calls the module's ``forward_step`` or
``train_step``, and turns what the module returned into what the runtime expects
(a PackedBatch of outputs, or float metrics after backward and step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlcore.data.batch import PackedBatch
from rlcore.errors import RlcoreError
from rlcore.runtime.interface import ModelHandle, ModelInterface

if TYPE_CHECKING:
    from rlcore.api.module import Module


class ModuleInterface(ModelInterface):
    """Runs ``module.<method>`` for MFCs the engine built from a module (see rlcore.api.flow)."""

    def __init__(self, module: Module, method: str = "forward_step"):
        if isinstance(module, str):
            raise RlcoreError(
                f"ModuleInterface needs the Module object, not its name {module!r}; MFCs built by "
                "rlcore.api run only through an Engine"
            )
        self.module = module
        self.method = method

    def generate(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        return self._forward(handle, data)

    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        return self._forward(handle, data)

    def _forward(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        self.module._bind(handle)
        with torch.no_grad():
            out = self.module.forward_step(data)
        return pack_outputs(data, out, f"{self.module.name}.forward_step")

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        m = self.module
        m._bind(handle)
        out = m.train_step(data)
        return train_metrics(m, out)


def run_forward(module: Module, data: PackedBatch) -> PackedBatch:
    """``module.forward_step`` on ``data`` outside the engine's step: ``data`` plus the outputs."""
    if not isinstance(data, PackedBatch):
        raise RlcoreError(f"{module.name}: expected a PackedBatch, got {type(data).__name__}")
    module._ensure_setup()
    missing = [k for k in module.input_keys if k not in data.data]
    if missing:
        raise RlcoreError(f"{module.name}.forward_step reads {missing}; the batch has {data.keys}")
    if module.has_model:
        module.wrapped_model.eval()
    inputs = data.select(list(module.input_keys))
    with torch.no_grad():
        out = pack_outputs(inputs, module.forward_step(inputs), f"{module.name}.forward_step")
    absent = [k for k in module.output_keys if k not in out.data]
    if absent:
        raise RlcoreError(f"{module.name}.forward_step declares outputs {list(module.output_keys)} "
                          f"but returned {out.keys}")
    merged = PackedBatch(list(data.ids), dict(data.data), dict(data.seqlens), dict(data.metadata))
    return merged.update(out.select(list(module.output_keys), metadata=False))


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


def train_metrics(module: Module, out: Any) -> dict[str, float]:
    """Backward and step on a returned loss; every metric as a float."""
    where = f"{module.name}.train_step"
    if isinstance(out, torch.Tensor):
        out = {"loss": out}
    if not isinstance(out, Mapping):
        raise RlcoreError(
            f"{where} must return the loss tensor or a dict of metrics, got {type(out).__name__}"
        )
    metrics = dict(out)
    loss = metrics.get("loss")
    if isinstance(loss, torch.Tensor) and loss.requires_grad and not module._backward_called:
        if loss.numel() != 1:
            raise RlcoreError(f"{where}: the loss must be a scalar, got shape "
                              f"{tuple(loss.shape)}")
        module.backward(loss)
        metrics.update(module.step())
    elif not module._backward_called:
        raise RlcoreError(
            f"{where} returned no loss tensor with gradients and did not call "
            "self.backward(loss); return the loss so the engine can train"
        )
    result = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise RlcoreError(f"{where}: metric {k!r} has shape {tuple(v.shape)}; "
                                  "metrics are scalars")
            v = v.item()
        try:
            result[k] = float(v)
        except (TypeError, ValueError):
            raise RlcoreError(f"{where}: metric {k!r} is {v!r}, not a number") from None
    return result


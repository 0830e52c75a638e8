"""The ModelInterface over a user :class:`~rlcore.api.Module`.

The executor calls ``ModuleInterface`` like any registered interface; it binds
the role's handle to the module, calls the module's ``forward_step`` or
``train_step``, and turns what the module returned into what the runtime expects
(a PackedBatch of outputs, or float metrics after backward and step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlcore.api.module import Module
from rlcore.api.outputs import pack_outputs
from rlcore.data.batch import PackedBatch
from rlcore.errors import RlcoreError
from rlcore.runtime.interface import ModelHandle, ModelInterface


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


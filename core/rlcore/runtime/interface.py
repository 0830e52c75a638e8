"""ModelInterface: what an MFC does to a model; ModelHandle: what the interface gets.

An interface is registered through ``rlcore_interfaces`` and built as
``impl(**mfc.interface_args)``. The executor calls the method named by the MFC's
interface type with the role's handle and a :class:`PackedBatch` holding exactly
the MFC's input keys (already renamed by ``input_remap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from rlcore.data.batch import PackedBatch


@dataclass
class ModelHandle:
    """One role's model on this rank.

    ``module`` is the bare ``nn.Module`` (under ZeRO-3 its parameters are shards;
    call ``engine`` to run it). ``engine`` is the backend's wrapper: call it like
    the module, and for trainable roles ``engine.backward(loss)`` then
    ``engine.step()``. ``version`` counts the optimizer steps applied to the
    weights. ``config`` is the role's spec, ``family`` its HF family name if any.
    """

    role: str
    module: nn.Module
    engine: Any
    tokenizer: Any = None
    config: Any = None
    family: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return int(self.engine.version)

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def trainable(self) -> bool:
        return bool(self.engine.trainable)


class ModelInterface:
    """Base of model interfaces; override the calls your MFCs use.

    - ``generate`` / ``inference`` return a PackedBatch of the outputs, under the
      interface's own key names, for the same sample ids as the input;
    - ``train_step`` returns scalar metrics (name -> float);
    - ``evaluate`` runs over an eval batch iterator and returns metrics;
    - ``save`` writes anything beyond the weights (the runtime saves those).
    """

    def generate(self, model: ModelHandle, data: PackedBatch) -> PackedBatch:
        raise NotImplementedError(f"{type(self).__name__} does not implement generate")

    def inference(self, model: ModelHandle, data: PackedBatch) -> PackedBatch:
        raise NotImplementedError(f"{type(self).__name__} does not implement inference")

    def train_step(self, model: ModelHandle, data: PackedBatch) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step")

    def evaluate(self, model: ModelHandle, batches: Any) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} does not implement evaluate")

    def save(self, model: ModelHandle, path: str) -> None:
        """Extra files for a checkpoint directory (default: none)."""

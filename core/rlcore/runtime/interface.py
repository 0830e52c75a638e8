"""ModelInterface: what an MFC does to a model; ModelHandle: what the interface gets.

An interface is registered through ``rlcore_interfaces`` and built as
``impl(**mfc.interface_args)``. The executor calls the method named by the MFC's
interface type with the role's handle and a :class:`PackedBatch` holding exactly
the MFC's input keys (already renamed by ``input_remap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from rlcore.data.batch import PackedBatch
    from rlcore.runtime.protocols import WrappedModel


@dataclass
class ModelHandle:
    """One role's model on this rank.

    ``model`` is the role's model as its backend wraps it (a
    :class:`~rlcore.runtime.protocols.WrappedModel`): call it like the module; for
    trainable roles ``model.backward(loss)`` then ``model.step()``. ``module`` is the
    bare ``nn.Module``: train and score through ``model`` (under ZeRO-3 ``module``'s
    parameters are shards); generation calls ``module`` inside
    ``model.gathered_parameters()``, which holds the full weights for the whole loop.
    ``version`` counts the optimizer steps applied to the weights. ``config`` is the
    role's spec, ``family`` its HF family name if any.
    """

    role: str
    module: nn.Module
    model: WrappedModel
    tokenizer: Any = None
    config: Any = None
    family: str | None = None

    @property
    def engine(self) -> WrappedModel:
        """Plugin API 1's name of :attr:`model` (warns once)."""
        from rlcore.compat import renamed

        renamed("ModelHandle.engine", "ModelHandle.model", api=1)
        return self.model

    @property
    def version(self) -> int:
        return int(self.model.version)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def trainable(self) -> bool:
        return bool(self.model.trainable)


class ModelInterface:
    """Base of model interfaces; override the calls your MFCs use.

    - ``generate`` / ``inference`` return a PackedBatch of the outputs, under the
      interface's own key names, for the same sample ids as the input; or a
      ``(batch, metrics)`` pair to also report scalars (a scorer's mean reward),
      logged like ``train_step``'s;
    - ``train_step`` returns scalar metrics (name -> float), logged as ``<mfc>/<name>``;
      a name starting with ``/`` is a step-level metric, logged without the prefix
      (``"/reward/mean"`` -> ``reward/mean``);
    - ``save`` writes anything beyond the weights (the runtime saves those);
    - ``state_dict``/``load_state_dict`` carry state across steps (a KL controller,
      running statistics) through checkpoints, as JSON-safe values;
    - ``updates_per_call`` is how many optimizer micro steps one ``train_step`` takes
      at most (it sizes learning-rate schedules).
    """

    updates_per_call: int = 1

    def generate(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        raise NotImplementedError(f"{type(self).__name__} does not implement generate")

    def inference(self, handle: ModelHandle, data: PackedBatch) -> PackedBatch:
        raise NotImplementedError(f"{type(self).__name__} does not implement inference")

    def train_step(self, handle: ModelHandle, data: PackedBatch) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step")

    def save(self, handle: ModelHandle, path: str) -> None:
        """Extra files for a checkpoint directory (default: none)."""

    def state_dict(self) -> dict[str, Any]:
        """State to resume with (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

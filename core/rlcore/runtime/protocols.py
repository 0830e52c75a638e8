"""The backend contract: what the runtime calls on a backend and on the model it wraps.

A backend plugin registers a class satisfying :class:`Backend` through
``rlcore_backends``; its ``wrap`` returns a :class:`WrappedModel` (a
:class:`TrainableWrappedModel` when the backend trains). The built-in
``DeepSpeedBackend``/``InferenceBackend`` and their ``TrainableModel``/``FrozenModel``
(rlcore.runtime.backends) are the reference implementations. Structural: nothing
needs to subclass these. Importing this module does not import torch.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

if TYPE_CHECKING:
    import torch
    from torch import nn


class WrappedModel(Protocol):
    """One role's model as its backend wraps it: what ``ModelHandle.model`` holds."""

    @property
    def module(self) -> nn.Module:
        """The bare ``nn.Module`` (under ZeRO-3 its parameters are shards); checkpoints save it."""
        ...

    @property
    def device(self) -> torch.device:
        """Where inputs go before a call (``ModelHandle.device``)."""
        ...

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype; interfaces cast float inputs to it."""
        ...

    @property
    def version(self) -> int:
        """Optimizer steps applied so far, 0 for frozen models (``ModelHandle.version``)."""
        ...

    @property
    def trainable(self) -> bool:
        """Whether it trains: then it is a :class:`TrainableWrappedModel` and is checkpointed."""
        ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the model like the module (e.g. ``(input_ids, cu_seqlens)`` -> logits)."""
        ...

    def train(self) -> Self:
        """Training mode; the executor calls it before a ``train_step`` MFC. Returns self."""
        ...

    def eval(self) -> Self:
        """Eval mode; the executor calls it before a ``generate``/``inference`` MFC. Returns self."""
        ...

    def on_active(self) -> None:
        """Before each MFC of the role: bring offloaded weights back (or do nothing)."""
        ...

    def on_idle(self) -> None:
        """After the role's last MFC of a step: offload the weights if configured (or do nothing)."""
        ...

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The complete weights as CPU tensors (collective under sharding: call on every rank)."""
        ...

    def gathered_parameters(self) -> AbstractContextManager[Any]:
        """A context in which ``module`` holds its full parameters on every rank (saving,
        generation, weight syncs); a no-op unless parameters are sharded."""
        ...

    def save_state(self, path: str | os.PathLike) -> None:
        """Write the resume state beyond the weights (optimizer, scheduler) under ``path``.

        Called on every rank for trainable roles, at each checkpoint; frozen models do nothing.
        """
        ...

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore what ``save_state`` wrote (every rank, on resume)."""
        ...


class TrainableWrappedModel(WrappedModel, Protocol):
    """A wrapped model that trains: what interfaces call in ``train_step``."""

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` of one micro step (loss scaling, accumulation)."""
        ...

    def step(self) -> dict[str, float]:
        """End a micro step; on the ones that update the weights return ``{"lr", "grad_norm"}``,
        else ``{}``."""
        ...

    def is_boundary(self) -> bool:
        """Whether the next ``step()`` updates the weights (gradient-accumulation boundary)."""
        ...


class Backend(Protocol):
    """A backend class, as registered by ``rlcore_backends`` (``BackendRecord.impl``).

    The runtime builds one per role, ``cls(options)`` with the role's options (or
    ``cls.options_class()``), then ``wrap``s the role's module.
    """

    options_class: ClassVar[type[Any]]
    """The options dataclass; ``options_class()`` gives the defaults."""

    trainable: ClassVar[bool]
    """Whether ``wrap`` returns a trainable model; its options then have
    ``grad_accum_steps``, which sizes ``total_steps``."""

    needs_model: ClassVar[bool]
    """False for roles without a neural model: no module is built and ``wrap`` gets None."""

    def __init__(self, options: Any) -> None:
        """Validate and keep ``options`` (an ``options_class`` instance)."""
        ...

    def wrap(self, module: nn.Module, *, total_steps: int) -> WrappedModel:
        """Wrap ``module``; ``total_steps`` (optimizer steps of the run) sizes LR schedules."""
        ...

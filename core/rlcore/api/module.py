"""``Module``: the base of user models in the Python API (ChatLearn's BaseModule).

A module is one model role. Subclasses implement ``setup`` (build ``self.model``),
``forward_step(data)`` for generation or inference, ``train_step(data)`` for
training, and optionally ``build_dataset(items)``. They declare the batch keys
their methods read and return, which is what turns them into dataflow-graph nodes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rlcore.api.flow import SymbolicBatch
from rlcore.dfg import InterfaceType
from rlcore.errors import ConfigError, RlcoreError

if TYPE_CHECKING:
    from rlcore.data.batch import PackedBatch
    from rlcore.runtime.interface import ModelHandle

_CALL_OPTIONS = ("name", "input_remap", "output_remap", "n_minibatches")


def _traceable(method: str, interface_type: InterfaceType | None):
    """Wrap a subclass's ``forward_step``/``train_step``: record on stand-ins, else run it."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(self: Module, *args: Any, **kwargs: Any) -> Any:
            if any(isinstance(a, SymbolicBatch) for a in args):
                itype = interface_type or InterfaceType(self.forward_type)
                return self._record(method, itype, args, kwargs)
            return fn(self, *args, **kwargs)

        call._rlcore_user = fn  # type: ignore[attr-defined]
        return call

    return wrap


class Module:
    """One model role of an :class:`~rlcore.api.Engine`.

    Declare keys as class attributes or constructor arguments:

    - ``input_keys``: batch keys ``forward_step`` reads; ``output_keys``: keys it returns;
    - ``train_keys``: keys ``train_step`` reads (default: ``input_keys``);
    - ``forward_type``: ``"inference"`` (default) or ``"generate"``: what the
      forward call is in the graph when the engine builds the flow itself.

    A module that overrides ``train_step`` is trainable: its model becomes a
    DeepSpeed engine built from ``options`` (a :class:`DeepSpeedOptions`; ``lr=``
    is a shortcut; ``lora=LoraOptions(r=...)`` trains LoRA adapters only). Other modules are
    frozen inference roles (``InferenceOptions``);
    a frozen module that does not override ``setup`` has no neural model (a reward
    function) and runs on the ``none`` backend.
    Inside ``forward_step``/``train_step`` call the model through ``self.wrapped_model``.
    """

    input_keys: ClassVar[Sequence[str]] = ()
    output_keys: ClassVar[Sequence[str]] = ()
    train_keys: ClassVar[Sequence[str] | None] = None
    forward_type: ClassVar[str] = "inference"
    # HF family of the model, if any: checkpoints are then written in HF format.
    family: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "forward_step" in cls.__dict__:
            cls.forward_step = _traceable("forward_step", None)(cls.__dict__["forward_step"])
        if "train_step" in cls.__dict__:
            cls.train_step = _traceable("train_step", InterfaceType.TRAIN_STEP)(
                cls.__dict__["train_step"]
            )

    def __init__(
        self,
        name: str,
        *,
        input_keys: Sequence[str] | None = None,
        output_keys: Sequence[str] | None = None,
        train_keys: Sequence[str] | None = None,
        forward_type: str | None = None,
        options: Any = None,
        lr: float | None = None,
        lora: Any = None,
    ):
        if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
            raise ConfigError(
                f"module name {name!r}: use letters, digits and underscores (it names the role, "
                "its metrics and its checkpoint directory)"
            )
        self.name = name
        if input_keys is not None:
            self.input_keys = tuple(input_keys)
        if output_keys is not None:
            self.output_keys = tuple(output_keys)
        if train_keys is not None:
            self.train_keys = tuple(train_keys)
        if forward_type is not None:
            self.forward_type = forward_type
        if self.forward_type not in ("inference", "generate"):
            raise ConfigError(f"module {name!r}: forward_type must be 'inference' or 'generate', "
                              f"got {self.forward_type!r}")
        if self.train_keys is None:
            self.train_keys = tuple(self.input_keys)
        if lr is not None:
            if options is not None:
                raise ConfigError(f"module {name!r}: give lr or options, not both")
            if not self.trainable:
                raise ConfigError(f"module {name!r}: lr is set but it defines no train_step")
            from rlcore.runtime.options import DeepSpeedOptions, OptimizerOptions

            options = DeepSpeedOptions(optimizer=OptimizerOptions(lr=lr))
        if lora is not None and not self.trainable:
            raise ConfigError(f"module {name!r}: lora is set but it defines no train_step")
        self.options = options
        self.lora = lora  # a LoraOptions: train adapters on the core transformer's projections
        self.model: Any = None
        self._handle: ModelHandle | None = None
        self._owner: Any = None  # the Engine this module belongs to
        self._backward_called = False
        self.rollout: tuple[str, dict[str, Any]] = ("local", {})  # engine name and arguments
        self._rollout_engine: Any = None

    # ------------------------------------------------------------------ what subclasses write

    def setup(self) -> None:
        """Build ``self.model`` (an ``nn.Module``); called once, on every rank, before training."""
        raise NotImplementedError(f"{type(self).__name__}.setup() must build self.model")

    def forward_step(self, data: PackedBatch) -> Any:
        """Generate or score ``data`` (holding ``input_keys``); return the ``output_keys``.

        Return a PackedBatch, or a dict of key -> a flat tensor packed like one of the
        input keys, a tensor with one value per sample, or a list with one entry per
        sample (a sequence, or a list of sequences).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward_step")

    def train_step(self, data: PackedBatch) -> Any:
        """One training step on ``data`` (holding ``train_keys``).

        Return the loss (a scalar tensor), or a dict of metrics whose ``"loss"`` is
        that tensor: the engine calls backward and the optimizer step. A step that
        calls ``self.backward(loss)`` / ``self.step()`` itself returns plain floats.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement train_step")

    def build_dataset(self, items: Any) -> Any:
        """The dataset for ``engine.set_dataset(items)``; the first module overriding this wins.

        Return an rlcore dataset (``__len__``, ``__getitem__``, ``collate``) or a
        sequence of items (strings or dicts) that the engine packs itself.
        """
        return NotImplemented

    # ------------------------------------------------------------------ what the engine reads

    @property
    def trainable(self) -> bool:
        """Whether the module defines ``train_step`` (and so is a DeepSpeed engine)."""
        return type(self).train_step is not Module.train_step

    @property
    def has_forward(self) -> bool:
        return type(self).forward_step is not Module.forward_step

    @property
    def builds_dataset(self) -> bool:
        return type(self).build_dataset is not Module.build_dataset

    @property
    def has_model(self) -> bool:
        """Whether the module has a neural model: it trains, overrides ``setup`` or set one."""
        return self.trainable or type(self).setup is not Module.setup or self.model is not None

    def _ensure_setup(self) -> Any:
        if self.model is None and not self.has_model:
            return None
        if self.model is None:
            self.setup()
            if self.model is None:
                raise RlcoreError(f"{type(self).__name__}.setup() did not set self.model")
        return self.model

    def _bind(self, handle: ModelHandle) -> None:
        self._handle = handle
        self._backward_called = False

    # ------------------------------------------------------------------ helpers for subclasses

    @property
    def wrapped_model(self) -> Any:
        """The model as its backend wraps it (call it like the model); the bare model
        before the engine has built it."""
        if not self.has_model:
            raise RlcoreError(f"module {self.name!r} has no model to call: it does not define "
                              "setup(); build self.model there, or compute without a model")
        if self._handle is not None:
            return self._handle.model
        return self._ensure_setup()

    @property
    def engine(self) -> Any:
        """Plugin API 1's name of :attr:`wrapped_model` (warns once)."""
        from rlcore.compat import renamed

        renamed("Module.engine", "Module.wrapped_model", api=1)
        return self.wrapped_model

    @property
    def handle(self) -> ModelHandle | None:
        """This role's :class:`ModelHandle` once the engine has built it."""
        return self._handle

    @property
    def device(self) -> Any:
        if self._handle is not None:
            return self._handle.device
        import torch

        if not self.has_model:
            return torch.device("cpu")
        params = list(self._ensure_setup().parameters())
        return params[0].device if params else torch.device("cpu")

    @property
    def version(self) -> int:
        """Optimizer steps applied to this model so far."""
        return self._handle.version if self._handle is not None else 0

    def rollout_engine(self) -> Any:
        """The rollout engine this module samples with, holding its weight version: ``local``
        (its own model), or ``worker`` when ``RLHFEngine(rollout_procs=K)`` puts it on rollout
        processes (ChatLearn's inference module apart from the trainer)."""
        if self._handle is None:
            raise RlcoreError(f"module {self.name!r}: rollout_engine() needs the engine's model; "
                              "call it inside forward_step during engine.learn()")
        engine = self._rollout_engine
        if engine is None or engine.handle is not self._handle:
            from rlcore.plugins import registry

            name, args = self.rollout
            engine = self._rollout_engine = registry.load("rollout_engines", name)(
                self._handle, **args)
        if engine.version != self.version:
            engine.update_weights(self.version)
        return engine

    @property
    def tokenizer(self) -> Any:
        """The engine's tokenizer (the embedded task's by default)."""
        if self._owner is not None:
            return self._owner.tokenizer
        from rlcore.data.tokenizer import load_tokenizer

        return load_tokenizer(None)

    def backward(self, loss: Any) -> None:
        """Backpropagate ``loss`` through the DeepSpeed engine (scaling, accumulation)."""
        if self._handle is None or not self._handle.trainable:
            raise RlcoreError(f"module {self.name!r}: backward() needs the engine's trainable "
                              "model; call it inside train_step during engine.learn()")
        self._backward_called = True
        self._handle.model.backward(loss)

    def step(self) -> dict[str, float]:
        """The optimizer step (on accumulation boundaries); returns ``lr``/``grad_norm`` then."""
        if self._handle is None or not self._handle.trainable:
            raise RlcoreError(f"module {self.name!r}: step() needs the engine's trainable model")
        return self._handle.model.step()

    # ------------------------------------------------------------------ flow calls

    def generate(self, *batches: Any, **options: Any) -> Any:
        """In a flow: record a generate call. On a PackedBatch: run ``forward_step`` now."""
        return self._call("forward_step", InterfaceType.GENERATE, batches, options)

    def inference(self, *batches: Any, **options: Any) -> Any:
        """In a flow: record an inference call. On a PackedBatch: run ``forward_step`` now."""
        return self._call("forward_step", InterfaceType.INFERENCE, batches, options)

    def _call(self, method: str, itype: InterfaceType, batches: tuple, options: dict) -> Any:
        if any(isinstance(b, SymbolicBatch) for b in batches):
            return self._record(method, itype, batches, options)
        if options:
            raise RlcoreError(f"{self.name}.{itype.value}: {sorted(options)} only apply inside "
                              "a flow function")
        if len(batches) != 1:
            raise RlcoreError(f"{self.name}.{itype.value}() outside a flow takes one PackedBatch")
        return self._forward_now(batches[0])

    def _forward_now(self, data: PackedBatch) -> PackedBatch:
        """``forward_step`` on ``data`` outside the engine's step: ``data`` plus the outputs."""
        import torch

        from rlcore.api.outputs import pack_outputs
        from rlcore.data.batch import PackedBatch

        if not isinstance(data, PackedBatch):
            raise RlcoreError(f"{self.name}: expected a PackedBatch, got {type(data).__name__}")
        self._ensure_setup()
        missing = [k for k in self.input_keys if k not in data.data]
        if missing:
            raise RlcoreError(f"{self.name}.forward_step reads {missing}; the batch has {data.keys}")
        if self.has_model:
            self.wrapped_model.eval()
        inputs = data.select(list(self.input_keys))
        with torch.no_grad():
            out = pack_outputs(inputs, self.forward_step(inputs), f"{self.name}.forward_step")
        absent = [k for k in self.output_keys if k not in out.data]
        if absent:
            raise RlcoreError(f"{self.name}.forward_step declares outputs {list(self.output_keys)} "
                              f"but returned {out.keys}")
        merged = PackedBatch(list(data.ids), dict(data.data), dict(data.seqlens),
                             dict(data.metadata))
        return merged.update(out.select(list(self.output_keys), metadata=False))

    def _record(self, method: str, itype: InterfaceType, args: tuple, options: dict) -> Any:
        unknown = sorted(set(options) - set(_CALL_OPTIONS))
        if unknown:
            raise RlcoreError(f"{self.name}.{itype.value}(): unknown options {unknown}; a flow "
                              f"call accepts {list(_CALL_OPTIONS)}")
        tracer = next(a for a in args if isinstance(a, SymbolicBatch))._tracer
        return tracer.record(self, method, itype, args, **options)

    def __repr__(self) -> str:
        kind = "trainable" if self.trainable else "frozen"
        return f"{type(self).__name__}({self.name!r}, {kind})"

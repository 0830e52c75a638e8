"""Model roles: what each one is (:class:`RoleSpec`), building them on a rank, and weight syncs.

A role is built once per rank: the experiment builds its ``nn.Module`` (or none, for a
role without a neural model such as a reward function), ``init_from`` copies another
role's initial weights, and the role's backend wraps it. A weight sync copies a trained
role's weights into a frozen one (ChatLearn's policy <- ppo_policy) after every step.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlcore.errors import ConfigError, RlcoreError
from rlcore.plugins.registry import resolve_impl
from rlcore.runtime.options import DeepSpeedOptions, InferenceOptions, LoraOptions

if TYPE_CHECKING:
    from rlcore.dfg import DataflowGraph
    from rlcore.runtime.interface import ModelHandle, ModelInterface
    from rlcore.runtime.protocols import Backend


@dataclass
class RoleSpec:
    """One model role.

    The weights come from ``model`` (an HF directory), else ``preset`` (a family
    name whose tiny config is built with random weights), else the experiment's
    own ``build_model``. ``init_from`` starts from another role's initial weights
    (a DPO reference = the policy). ``backend`` defaults to ``deepspeed`` when
    ``trainable`` and ``inference`` otherwise; ``options`` are that backend's.
    Backend ``none`` is a role with no neural model (a reward function). ``lora`` (rank > 0)
    trains LoRA adapters only; a frozen role ``init_from`` such a role is its base with the
    adapters off, sharing its weights (no copy).
    """

    name: str
    trainable: bool = False
    model: str | None = None
    preset: str | None = None
    value_head: bool = False
    init_from: str | None = None
    backend: str | None = None
    options: DeepSpeedOptions | InferenceOptions | None = None
    lora: LoraOptions | None = None

    @property
    def backend_name(self) -> str:
        return self.backend or ("deepspeed" if self.trainable else "inference")


def optimizer_steps(graph: DataflowGraph, interfaces: Mapping[str, ModelInterface], role: str,
                    steps: int, grad_accum: int) -> int:
    """Optimizer steps ``role`` takes over ``steps`` training steps (at most, with early stops)."""
    micro = sum(m.n_minibatches * getattr(interfaces.get(m.name), "updates_per_call", 1)
                for m in graph.mfcs if m.role == role and m.is_train)
    return max(1, math.ceil(steps * micro / grad_accum))


def build_roles(exp: Any, graph: DataflowGraph, interfaces: Mapping[str, ModelInterface],
                tokenizer: Any, total_steps: int) -> dict[str, ModelHandle]:
    """A :class:`ModelHandle` per role the graph uses, each wrapped by its backend."""
    from rlcore.runtime.interface import ModelHandle

    specs = {r.name: r for r in exp.roles()}
    used = graph.roles
    unused = sorted(set(specs) - set(used))
    if unused:
        warnings.warn(f"roles {unused} are declared but no MFC uses them", stacklevel=2)
    trained = set(graph.trainable_roles)
    handles: dict[str, ModelHandle] = {}
    initial: dict[str, dict] = {}
    # Roles that others start from are built first, so their initial weights can be copied.
    names = [r.name for r in exp.roles() if r.name in used]
    for name in sorted(names, key=lambda n: specs[n].init_from is not None):
        spec = specs[name]
        if name in trained and not spec.trainable:
            raise ConfigError(f"role {name!r} has a train_step MFC but is not marked trainable")
        source = handles.get(spec.init_from) if spec.init_from else None
        if base_view_of(spec, source):
            handles[name] = ModelHandle(name, source.module, AdaptersOff(source.model), tokenizer,
                                        spec, source.family)
            continue
        backend_cls = backend_class(spec.backend_name)
        module, family = None, None
        if backend_cls.needs_model:
            module, family = _build_module(exp, spec, specs, initial, tokenizer)
            lora = spec.trainable and spec.lora is not None and spec.lora.enabled
            followers = [s for s in specs.values() if s.init_from == name]
            views = [s for s in followers if lora and not s.trainable  # see base_view_of
                     and s.backend_name == "inference" and s.value_head == spec.value_head]
            if len(views) < len(followers):  # an adapters-off view of a LoRA base copies nothing
                initial[name] = {k: v.detach().clone() for k, v in module.state_dict().items()}
            if lora:
                from rlcore.models.lora import add_adapters
                from rlcore.models.peft_io import is_adapter_dir

                add_adapters(module, spec.lora, f"{name}.lora")
                base = spec.model or (specs[spec.init_from].model if spec.init_from else None)
                # adapters loaded merged are no base on disk: a checkpoint writes its own
                module.lora_base = None if base is None or is_adapter_dir(base) else base
        options = spec.options if spec.options is not None else backend_cls.options_class()
        backend: Backend = backend_cls(options)
        steps = total_steps
        if backend.trainable:
            steps = optimizer_steps(graph, interfaces, name, total_steps, options.grad_accum_steps)
        model = backend.wrap(module, total_steps=steps)
        handles[name] = ModelHandle(name, model.module, model, tokenizer, spec, family)
    return handles


def base_view_of(spec: RoleSpec, source: ModelHandle | None) -> bool:
    """Whether frozen role ``spec`` can be its ``init_from`` source's base with the adapters off:
    the source trains LoRA only, and both are LMs (or both value models)."""
    from rlcore.models.lora import has_adapters

    return (source is not None and not spec.trainable and spec.backend_name == "inference"
            and has_adapters(source.module)
            and bool(spec.value_head) == bool(source.module.config.value_head))


class AdaptersOff:
    """A frozen role that is a LoRA role's base: that role's model, called with every adapter
    switched off and without gradients (runs in the trained role's dtype and placement)."""

    trainable = False
    version = 0

    def __init__(self, source: Any):
        self.source = source

    @property
    def module(self) -> Any:
        return self.source.module

    @property
    def device(self) -> Any:
        return self.source.device

    @property
    def dtype(self) -> Any:
        return self.source.dtype

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import torch

        from rlcore.models.lora import adapters_disabled

        with adapters_disabled(self.source.module), torch.no_grad():
            return self.source(*args, **kwargs)

    def train(self) -> AdaptersOff:
        return self  # the trained role's mode is its own

    def eval(self) -> AdaptersOff:
        return self

    def on_active(self) -> None:
        """The weights are the trained role's: nothing to move."""

    def on_idle(self) -> None:
        """See on_active."""

    def full_state_dict(self) -> dict[str, Any]:
        from rlcore.models.lora import base_state_dict

        return base_state_dict(self.source.full_state_dict())

    def gathered_parameters(self) -> Any:
        return self.source.gathered_parameters()

    def save_state(self, path: Any) -> None:
        """The base never changes: nothing to save."""

    def load_state(self, path: Any) -> None:
        """See save_state."""


# What a backend written before the Backend protocol declared these class attributes meant.
OLD_BACKEND_DEFAULTS = {"needs_model": True, "trainable": False}


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name`` (or ``module:Class``).

    One that lacks a class attribute of :class:`~rlcore.runtime.protocols.Backend` it was
    once allowed to omit gets the old default, with a DeprecationWarning the first time.
    """
    cls = resolve_impl("backends", name)
    for attr, default in OLD_BACKEND_DEFAULTS.items():
        if not hasattr(cls, attr):
            warnings.warn(f"backend {name!r} ({cls.__module__}.{cls.__qualname__}) does not set "
                          f"the class attribute {attr!r} of rlcore.runtime.protocols.Backend; "
                          f"using {default} as before. Set it: the default will be removed.",
                          DeprecationWarning, stacklevel=3)
            setattr(cls, attr, default)
    return cls


def _build_module(exp: Any, spec: RoleSpec, specs: dict[str, RoleSpec], initial: dict[str, dict],
                  tokenizer: Any) -> tuple[Any, str | None]:
    if not spec.init_from:
        return exp.build_model(spec, tokenizer)
    src = specs.get(spec.init_from)
    if src is None:
        raise ConfigError(f"role {spec.name!r}: init_from names unknown role {spec.init_from!r}")
    module, family = exp.build_model(dataclasses.replace(src, value_head=spec.value_head), tokenizer)
    if spec.init_from in initial:
        module.load_state_dict(initial[spec.init_from], strict=False)
    return module, family


def sync_weights(handles: Mapping[str, ModelHandle], syncs: Mapping[str, str]) -> None:
    """Copy each trained role's full weights into its frozen follower (collective under ZeRO-3)."""
    for src_name, dst_name in syncs.items():
        missing = [n for n in (src_name, dst_name) if n not in handles]
        if missing:
            raise ConfigError(f"weight sync {src_name} -> {dst_name}: no role {missing[0]!r} "
                              f"in this run (roles: {sorted(handles)})")
        src, dst = handles[src_name], handles[dst_name]
        weights = src.model.full_state_dict()
        from rlcore.models.lora import has_adapters, merged_state_dict

        if has_adapters(src.module) and not has_adapters(dst.module):
            weights = merged_state_dict(weights, src.module.lora)
        target = dst.module.state_dict()
        mismatch = sorted(k for k in set(weights) ^ set(target)) or sorted(
            k for k in weights if weights[k].shape != target[k].shape)
        if mismatch:
            raise RlcoreError(f"weight sync {src_name} -> {dst_name}: the models differ "
                              f"(e.g. {mismatch[:3]}); a synced pair must share one architecture")
        with dst.model.gathered_parameters():
            dst.module.load_state_dict(weights)
        dst.model.version = src.model.version

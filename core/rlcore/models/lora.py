"""LoRA adapters on the core transformer, through peft: add them, switch them off, merge them.

``add_adapters`` injects peft's LoRA layers into the block projections named by
:class:`~rlcore.runtime.options.LoraOptions` and leaves only the adapters (and a value head)
trainable. peft renames a wrapped projection's weight ``...q_proj.base_layer.weight``;
:func:`base_state_dict` and :func:`merged_state_dict` give core names back, and
:func:`adapter_state_dict` the adapters alone (``...q_proj.lora_A.weight``), all from the
module's ``state_dict()``. The PEFT files
under HF names are written by :mod:`rlcore.models.peft_io`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from rlcore.errors import ConfigError

if TYPE_CHECKING:
    from rlcore.runtime.options import LoraOptions

# Short target name -> the projection's suffix inside a block.
PROJECTIONS = {"q": "attn.q_proj", "k": "attn.k_proj", "v": "attn.v_proj", "o": "attn.o_proj",
               "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
ADAPTER = "default"  # peft's adapter name; rlcore holds one adapter per role
_PEFT_KEY = re.compile(rf"\.(base_layer|lora_[AB]\.{ADAPTER})\.")


def projections_of(module: nn.Module) -> list[str]:
    """The short names of the projections some block of ``module`` has (a plain MLP has no
    gate; a mixture-of-experts block has no gate, up or down: its experts are stacked)."""
    names = {n for n, _ in module.named_modules()}
    return [short for short, suffix in PROJECTIONS.items()
            if any(f"blocks.{i}.{suffix}" in names for i in range(len(module.blocks)))]


def target_modules(module: nn.Module, opts: LoraOptions, key: str) -> list[str]:
    """Full names of the projections that get adapters; unknown names fail naming ``key``."""
    present = projections_of(module) if hasattr(module, "blocks") else []
    if not present:
        raise ConfigError(f"{key}: LoRA goes on the core transformer's block projections, and "
                          f"this {type(module).__name__} has none (build a "
                          "rlcore.models.Transformer)")
    wanted = present if "all" in opts.targets else list(dict.fromkeys(opts.targets))
    missing = [t for t in wanted if t not in present]
    if missing and any(type(m).__name__ == "MoE" for m in module.modules()):
        raise ConfigError(f"{key}.targets: {', '.join(missing)} name dense MLP projections, and "
                          "this mixture-of-experts model's experts are stacked parameters "
                          "(mlp.gate_up_proj, mlp.down_proj) that LoRA does not target yet; "
                          f"use {', '.join(present)} (all = those)")
    if missing:
        raise ConfigError(f"{key}.targets: this model has no {', '.join(missing)} projection; "
                          f"its block projections are {', '.join(present)} (or use all)")
    names = {n for n, _ in module.named_modules()}
    return [f"blocks.{i}.{PROJECTIONS[t]}" for i in range(len(module.blocks)) for t in wanted
            if f"blocks.{i}.{PROJECTIONS[t]}" in names]


def add_adapters(module: nn.Module, opts: LoraOptions, key: str = "lora") -> nn.Module:
    """Inject LoRA into ``module`` in place; only adapters (and a value head) stay trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = target_modules(module, opts, key)
    config = LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
                        target_modules=targets, bias="none")
    inject_adapter_in_model(config, module, adapter_name=ADAPTER)
    for name, p in module.named_parameters():
        p.requires_grad_(".lora_" in name or name.startswith("value_head."))
    module.lora = opts
    return module


def has_adapters(module: nn.Module | None) -> bool:
    """Whether ``module`` carries LoRA adapters."""
    return getattr(module, "lora", None) is not None


def _tuner_layers(module: nn.Module) -> Iterator[nn.Module]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return (m for m in module.modules() if isinstance(m, BaseTunerLayer))


@contextlib.contextmanager
def adapters_disabled(module: nn.Module):
    """The base model for the duration: every adapter switched off, then back on."""
    layers = list(_tuner_layers(module))
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield module
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def core_name(peft_name: str) -> str:
    """``blocks.0.attn.q_proj.base_layer.weight`` -> ``blocks.0.attn.q_proj.weight``;
    ``...lora_A.default.weight`` -> ``...lora_A.weight``."""
    return _PEFT_KEY.sub(lambda m: "." if m.group(1) == "base_layer" else f".{m.group(1)[:6]}.",
                         peft_name)


def base_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The base weights of a state dict with adapters, under core names."""
    return {core_name(k): v for k, v in sd.items() if ".lora_" not in k}


def adapter_state_dict(sd: dict[str, torch.Tensor], with_head: bool = True) -> dict[str, torch.Tensor]:
    """The adapters (``blocks.i.<proj>.lora_A.weight`` / ``lora_B``), and the value head."""
    return {core_name(k): v for k, v in sd.items()
            if ".lora_" in k or (with_head and k.startswith("value_head."))}


def trainable_keys(sd: dict[str, torch.Tensor]) -> list[str]:
    """The keys of a state dict with adapters that training changes (adapters, value head)."""
    return [k for k in sd if ".lora_" in k or k.startswith("value_head.")]


def scaling(opts: LoraOptions) -> float:
    """peft's LoRA scale: the update is ``scaling * B @ A``."""
    return opts.alpha / opts.r


def merged_state_dict(sd: dict[str, torch.Tensor], opts: LoraOptions) -> dict[str, torch.Tensor]:
    """Core-named weights with every adapter folded in: ``W + (alpha / r) B A``."""
    out = base_state_dict(sd)
    adapters = adapter_state_dict(sd, with_head=False)
    for key in [k for k in adapters if ".lora_A." in k]:
        proj = key.rsplit(".lora_A.", 1)[0]
        a, b = adapters[key], adapters[f"{proj}.lora_B.weight"]
        weight = out[f"{proj}.weight"]
        delta = scaling(opts) * (b.float() @ a.float())
        out[f"{proj}.weight"] = (weight.float() + delta).to(weight.dtype)
    return out

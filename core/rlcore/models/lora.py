"""LoRA adapters on the core transformer, through peft: add them, switch them off, merge them.

``add_adapters`` injects peft's LoRA layers into the block projections named by
:class:`~rlcore.runtime.options.LoraOptions` and leaves only the adapters (and a value head)
trainable. peft renames a wrapped projection's weight ``...q_proj.base_layer.weight``;
:func:`base_state_dict` and :func:`merged_state_dict` give core names back, and
:func:`adapter_state_dict` the adapters alone (``...q_proj.lora_A.weight``), all from the
module's ``state_dict()``. A mixture-of-experts block's stacked experts get per-expert
adapters of rlcore's own (``blocks.i.mlp.lora_A_gate_up [E, r, in]``, ``lora_B_gate_up
[E, out, r]``; :func:`rlcore.models.moe.expert_ffn` applies them). The PEFT files under HF
names are written by :mod:`rlcore.models.peft_io`.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn

from rlcore.errors import ConfigError
from rlcore.models.moe import moe_layers

if TYPE_CHECKING:
    from rlcore.runtime.options import LoraOptions

# Short target name -> the projection's suffix inside a block.
PROJECTIONS = {"q": "attn.q_proj", "k": "attn.k_proj", "v": "attn.v_proj", "o": "attn.o_proj",
               "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
# Short target name -> the shared expert's projection (Qwen2-MoE), and the stacked expert weight.
SHARED = {"gate": "mlp.shared.gate_proj", "up": "mlp.shared.up_proj", "down": "mlp.shared.down_proj"}
EXPERTS = {"gate": "gate_up", "up": "gate_up", "down": "down"}
ADAPTER = "default"  # peft's adapter name; rlcore holds one adapter per role
_PEFT_KEY = re.compile(rf"\.(base_layer|lora_[AB]\.{ADAPTER})\.")
EXPERT_LORA_A = re.compile(r"^(.+)\.lora_A_(gate_up|down)$")  # blocks.i.mlp.lora_A_<w>


def projections_of(module: nn.Module) -> list[str]:
    """The short names of the projections some block of ``module`` has (a plain MLP has no
    gate; a mixture-of-experts block has gate, up and down in its stacked experts)."""
    names = {n for n, _ in module.named_modules()}
    moe = bool(moe_layers(module))
    return [short for short, suffix in PROJECTIONS.items()
            if (moe and short in EXPERTS) or any(f"blocks.{i}.{suffix}" in names
                                                 for i in range(len(module.blocks)))]


def _wanted(module: nn.Module, opts: LoraOptions, key: str) -> list[str]:
    """The short names ``opts.targets`` asks for; names the model lacks fail naming ``key``."""
    present = projections_of(module) if hasattr(module, "blocks") else []
    if not present:
        raise ConfigError(f"{key}: LoRA goes on the core transformer's block projections, and "
                          f"this {type(module).__name__} has none (build a "
                          "rlcore.models.Transformer)")
    wanted = present if "all" in opts.targets else list(dict.fromkeys(opts.targets))
    missing = [t for t in wanted if t not in present]
    if missing:
        raise ConfigError(f"{key}.targets: this model has no {', '.join(missing)} projection; "
                          f"its block projections are {', '.join(present)} (or use all)")
    return wanted


def target_modules(module: nn.Module, opts: LoraOptions, key: str) -> list[str]:
    """Full names of the ``nn.Linear`` projections that get peft adapters (attention, dense
    MLPs, shared experts); unknown names fail naming ``key``."""
    wanted = _wanted(module, opts, key)
    names = {n for n, _ in module.named_modules()}
    suffixes = [PROJECTIONS[t] for t in wanted] + [SHARED[t] for t in wanted if t in SHARED]
    return [f"blocks.{i}.{s}" for i in range(len(module.blocks)) for s in suffixes
            if f"blocks.{i}.{s}" in names]


def expert_targets(module: nn.Module, opts: LoraOptions, key: str) -> list[str]:
    """The stacked expert weights (``gate_up``, ``down``) that get adapters on MoE layers."""
    if not moe_layers(module):
        return []
    wanted = set(_wanted(module, opts, key)) & set(EXPERTS)
    if len(wanted & {"gate", "up"}) == 1:
        raise ConfigError(f"{key}.targets: the experts hold gate and up as one stacked weight "
                          "(mlp.gate_up_proj), so name both gate and up, or neither")
    weights = list(dict.fromkeys(EXPERTS[t] for t in sorted(wanted, key=list(EXPERTS).index)))
    if weights and opts.dropout:
        raise ConfigError(f"{key}.dropout: adapters on stacked experts take no dropout (peft's "
                          f"neither); set {key}.dropout=0, or leave gate, up and down out of "
                          f"{key}.targets")
    return weights


def add_adapters(module: nn.Module, opts: LoraOptions, key: str = "lora") -> nn.Module:
    """Inject LoRA into ``module`` in place; only adapters (and a value head) stay trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    targets, experts = target_modules(module, opts, key), expert_targets(module, opts, key)
    if targets:
        config = LoraConfig(r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
                            target_modules=targets, bias="none")
        inject_adapter_in_model(config, module, adapter_name=ADAPTER)
    for moe in moe_layers(module) if experts else []:
        _add_expert_adapters(moe, experts, opts)
    for name, p in module.named_parameters():
        p.requires_grad_(".lora_" in name or name.startswith("value_head."))
    module.lora = opts
    return module


def _add_expert_adapters(moe: nn.Module, weights: list[str], opts: LoraOptions) -> None:
    """``lora_A_<w> [E, r, in]`` (peft's init, per expert) and ``lora_B_<w> [E, out, r]`` (zero)
    beside each stacked expert weight ``<w>_proj [E, out, in]``."""
    for w in weights:
        base = getattr(moe, f"{w}_proj")
        n, out, inp = base.shape
        a = torch.empty(n, opts.r, inp, dtype=base.dtype, device=base.device)
        nn.init.kaiming_uniform_(a.view(-1, inp), a=math.sqrt(5))
        moe.register_parameter(f"lora_A_{w}", nn.Parameter(a))
        moe.register_parameter(f"lora_B_{w}", nn.Parameter(base.new_zeros(n, out, opts.r)))
    moe.lora_scale = scaling(opts)


def has_adapters(module: nn.Module | None) -> bool:
    """Whether ``module`` carries LoRA adapters."""
    return getattr(module, "lora", None) is not None


def _tuner_layers(module: nn.Module) -> Iterator[nn.Module]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return (m for m in module.modules() if isinstance(m, BaseTunerLayer))


@contextlib.contextmanager
def adapters_disabled(module: nn.Module):
    """The base model for the duration: every adapter switched off, then back on."""
    layers, experts = list(_tuner_layers(module)), moe_layers(module)
    for layer in layers:
        layer.enable_adapters(False)
    for moe in experts:
        moe.lora_on = False
    try:
        yield module
    finally:
        for layer in layers:
            layer.enable_adapters(True)
        for moe in experts:
            moe.lora_on = True


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
    for key in adapters:
        if ".lora_A." in key:  # peft's: W [out, in] += s B A
            proj = key.rsplit(".lora_A.", 1)[0]
            weight_key, b = f"{proj}.weight", adapters[f"{proj}.lora_B.weight"]
        elif m := EXPERT_LORA_A.match(key):  # stacked experts: W[e] += s B[e] A[e]
            weight_key, b = f"{m[1]}.{m[2]}_proj", adapters[f"{m[1]}.lora_B_{m[2]}"]
        else:
            continue
        weight = out[weight_key]
        delta = scaling(opts) * torch.matmul(b.float(), adapters[key].float())
        out[weight_key] = (weight.float() + delta).to(weight.dtype)
    return out

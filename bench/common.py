"""Shared pieces of the model benchmarks: sizes, matched core/HF model pairs, timing, output.

A pair is built the way rlcore loads a checkpoint: an HF model from the family's
``config_to_hf``, its state dict converted by the family plugin into the core
transformer. Both therefore compute the same function (the scripts check it).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable

import torch

from rlcore.models.config import TransformerConfig

# Core-config sizes; family-specific switches (bias, norm, positions) come from the family.
SIZES: dict[str, dict] = {
    "tiny": dict(vocab_size=1024, hidden_size=128, intermediate_size=352, n_layers=2,
                 n_q_heads=4, n_kv_heads=4, head_dim=32, max_positions=1024),
    # Llama-style ~100M: hidden 768, 12 layers, 12 heads, SwiGLU 2048, vocab 8192 (untied head).
    "100m": dict(vocab_size=8192, hidden_size=768, intermediate_size=2048, n_layers=12,
                 n_q_heads=12, n_kv_heads=12, head_dim=64, max_positions=1024),
    # Tiny but wide mixture of experts (MoE families only: --family mixtral|qwen3_moe|olmoe):
    # tiny's attention, 8 experts of 352, top-2 on both layers.
    "moe": dict(vocab_size=1024, hidden_size=128, intermediate_size=352, n_layers=2,
                n_q_heads=4, n_kv_heads=4, head_dim=32, max_positions=1024, n_experts=8,
                n_experts_per_token=2),
}

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def default_family() -> str:
    """``llama`` when its plugin is installed, else the first registered family."""
    from rlcore.plugins import registry

    names = list(registry.items("families"))
    if not names:
        raise SystemExit("no model family plugin installed: pip install -e plugins/rlcore-plugin-llama")
    return "llama" if "llama" in names else names[0]


def core_config(family, size: str) -> TransformerConfig:
    """The family's tiny config resized to ``size`` (GPT-2's MLP stays ungated 4x)."""
    cfg = family.tiny_config()
    sizes = dict(SIZES[size])
    if cfg.moe_intermediate_size:  # a family that sizes experts apart (Qwen-MoE): as wide as the MLP
        sizes["moe_intermediate_size"] = sizes["intermediate_size"]
    if not cfg.gated_mlp:  # plain MLP: same parameter count as a 4x GELU MLP
        sizes["intermediate_size"] = 4 * sizes["hidden_size"]
    return dataclasses.replace(cfg, **sizes)


def build_pair(family_name: str, size: str, device: str, dtype: torch.dtype, seed: int,
               hf_attn: str = "sdpa"):
    """(core Transformer, HF model, core config, family), both in eval mode with equal weights."""
    import transformers

    from rlcore.models.transformer import Transformer
    from rlcore.plugins import registry

    family = registry.load("families", family_name)
    cfg = core_config(family, size)
    hf_cfg = transformers.AutoConfig.for_model(**family.config_to_hf(cfg))
    hf_cfg._attn_implementation = hf_attn
    torch.manual_seed(seed)
    hf = transformers.AutoModelForCausalLM.from_config(hf_cfg, attn_implementation=hf_attn)
    hf.to(device=device, dtype=dtype).eval()
    core = Transformer(cfg)
    core.load_state_dict(family.state_dict_from_hf(hf.state_dict(), cfg), strict=True)
    core.to(device=device, dtype=dtype).eval()
    return core, hf, cfg, family


def n_params(model: torch.nn.Module) -> int:
    """Distinct parameters (tied ones counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call of fn (device-synchronised).

    On a shared CPU box other jobs stretch wall time; CPU time counts only this
    process's work, so its ratio is the steadier one there. On CUDA use wall time.
    """
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


def median(xs: list[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def env_info(device: str) -> dict:
    """What the numbers were measured on."""
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def print_table(headers: list[str], rows: list[list]) -> None:
    """A Markdown table (pastes straight into bench/README.md)."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def print_json(name: str, payload: dict) -> None:
    """One machine-readable line, prefixed so it greps out of the log."""
    print("JSON " + json.dumps({"bench": name, **payload}, sort_keys=True))

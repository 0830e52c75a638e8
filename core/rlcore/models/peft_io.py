"""LoRA adapters as PEFT files under HF names, and PEFT adapter directories read back merged.

A role's adapter directory holds ``adapter_config.json`` and ``adapter_model.safetensors``, which
``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), path)`` loads, and
``rlcore_base.json``: the base's path and the sha256 of its weight files. A core projection that
HF fuses with others (GPT-2's ``c_attn``, Phi-3's ``qkv_proj``) is written as one adapter of rank
``n * r``: the parts' A matrices stacked, their B matrices block-diagonal (zero for a part without
an adapter), so that the update is the same.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rlcore.errors import ModelLoadError
from rlcore.models.lora import EXPERT_LORA_A, adapter_state_dict

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
BASE_RECORD = "rlcore_base.json"
_PREFIX = "base_model.model."


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PEFT adapter directory (and not a full model)."""
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file()


def is_model_dir(path: str | os.PathLike) -> bool:
    """An HF model directory (``config.json``) or a LoRA adapter directory."""
    return (Path(path) / "config.json").is_file() or is_adapter_dir(path)


def base_record(base: str | os.PathLike) -> dict[str, Any]:
    """``{"path", "sha256": {file: digest}}`` of the base model directory's weight files."""
    from rlcore.models.hf_io import weight_files

    base = Path(base).absolute()
    files = sorted(set(weight_files(base).values()))
    return {"path": str(base), "sha256": {f: _sha256(base / f) for f in files}}


def check_base(record: dict[str, Any], where: str) -> None:
    """Fail unless the base named by ``record`` still has the weights the adapters were trained on."""
    base = Path(record["path"])
    for name, digest in sorted(record["sha256"].items()):
        file = base / name
        if not file.is_file():
            raise ModelLoadError(f"{where}: the adapters' base {file} is missing; put the base "
                                 f"model back at {base} (or edit {BASE_RECORD})")
        if _sha256(file) != digest:
            raise ModelLoadError(f"{where}: the adapters' base {file} changed since they were "
                                 "trained (its sha256 differs); adapters only fit the base they "
                                 "were trained on")


def _sha256(file: Path) -> str:
    stat = file.stat()
    return _cached_sha256(str(file.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _cached_sha256(file: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def save_adapter(sd: dict[str, torch.Tensor], module: torch.nn.Module, family: str,
                 path: str | os.PathLike, base: dict[str, Any]) -> Path:
    """Write the adapters of state dict ``sd`` (of ``module``, a core Transformer with adapters)
    in PEFT format under ``family``'s HF names; ``base`` is :func:`base_record`'s."""
    from peft import LoraConfig

    from rlcore.models.hf_io import _atomic, resolve_family
    from rlcore.models.hf_layout import core_shapes

    fam = resolve_family(family)
    keys = getattr(fam, "keys", None)
    if keys is None:
        raise ModelLoadError(f"family {fam.name} declares no HF name table (DecoderFamily.keys), "
                             "so its LoRA adapters cannot be written in PEFT format")
    opts, cfg = module.lora, module.config
    shapes = core_shapes(cfg)
    adapters = adapter_state_dict(sd, with_head=False)
    groups: dict[str, tuple[int, tuple[str, ...], dict[str, Any]]] = {}
    conv1d = False  # GPT-2's [in, out] weights: peft's fan_in_fan_out
    for key in (k for k in adapters if ".lora_A." in k):
        proj = key.rsplit(".lora_A.", 1)[0]
        hf_weight, parts = keys.hf_key(f"{proj}.weight")
        layer = int(proj.split(".")[1])
        conv1d |= hf_weight.removeprefix(f"{keys.layer_prefix}{layer}.") in keys.transposed
        groups.setdefault(hf_weight.removesuffix(".weight"), (layer, parts, {}))[2][
            proj.split(".", 2)[2] + ".weight"] = (adapters[key], adapters[f"{proj}.lora_B.weight"])
    tensors, parameters = _expert_tensors(adapters, keys)
    ranks, alphas = {}, {}
    for name, (layer, parts, found) in groups.items():
        a_parts, b_parts = [], []
        for part in parts:
            out_dim, in_dim = shapes[f"blocks.{layer}.{part}"]
            a, b = found.get(part, (torch.zeros(opts.r, in_dim), torch.zeros(out_dim, opts.r)))
            a_parts.append(a.detach().float())
            b_parts.append(b.detach().float())
        tensors[f"{_PREFIX}{name}.lora_A.weight"] = torch.cat(a_parts).contiguous()
        tensors[f"{_PREFIX}{name}.lora_B.weight"] = torch.block_diag(*b_parts).contiguous()
        if len(parts) > 1:
            ranks[re.escape(name)], alphas[re.escape(name)] = opts.r * len(parts), opts.alpha * len(parts)
    if cfg.value_head:
        tensors[f"{_PREFIX}score.weight"] = sd["value_head.weight"].detach().float().contiguous()
    config = LoraConfig(
        r=opts.r, lora_alpha=opts.alpha, lora_dropout=opts.dropout, bias="none",
        target_modules=sorted(groups) or None, target_parameters=parameters or None,
        rank_pattern=ranks, alpha_pattern=alphas,
        fan_in_fan_out=conv1d,
        task_type="SEQ_CLS" if cfg.value_head else "CAUSAL_LM",
        modules_to_save=["score"] if cfg.value_head else None,
        base_model_name_or_path=base["path"], inference_mode=True)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _atomic(path / ADAPTER_WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    plain = json.loads(json.dumps(config.to_dict(), default=sorted))  # sets -> sorted lists
    _atomic(path / ADAPTER_CONFIG, lambda tmp: Path(tmp).write_text(json.dumps(plain, indent=2)))
    base = {**base, "relative": os.path.relpath(base["path"], path.absolute())}
    _atomic(path / BASE_RECORD, lambda tmp: Path(tmp).write_text(json.dumps(base, indent=2)))
    return path


def _expert_tensors(adapters: dict[str, torch.Tensor], keys: Any,
                    ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The stacked experts' adapters as peft's ``target_parameters`` files, and those targets.

    peft wraps the HF experts module once per adapted weight, in the module's order
    (``gate_up_proj`` innermost), so the inner one is named ``experts.base_layer.lora_A``; its
    ``lora_A`` is ``[E*r, in]`` expert-major and ``lora_B`` ``[out, r*E]`` rank-major.
    """
    found: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    targets = set()
    for key in adapters:
        m = EXPERT_LORA_A.match(key)
        if not m:
            continue
        hf_name, _ = keys.hf_key(f"{m[1]}.{m[2]}_proj")  # model.layers.i.mlp.experts.<w>_proj
        module, _, param = hf_name.rpartition(".")
        a, b = adapters[key].detach().float(), adapters[f"{m[1]}.lora_B_{m[2]}"].detach().float()
        n, r, _ = a.shape
        found.setdefault(module, {})[param] = (a.reshape(n * r, -1), b.permute(1, 2, 0).reshape(-1, r * n))
        targets.add(hf_name.removeprefix(f"{keys.layer_prefix}{m[1].split('.')[1]}."))
    tensors = {}
    for module, params in found.items():
        order = sorted(params, key=lambda p: p != "gate_up_proj")
        for depth, param in enumerate(reversed(order)):
            a, b = params[param]
            tensors[f"{_PREFIX}{module}{'.base_layer' * depth}.lora_A.weight"] = a.contiguous()
            tensors[f"{_PREFIX}{module}{'.base_layer' * depth}.lora_B.weight"] = b.contiguous()
    return tensors, sorted(targets)


def adapter_base(path: str | os.PathLike) -> Path:
    """The base model directory of adapter directory ``path`` (checksum checked when recorded)."""
    path = Path(path)
    config = _read_json(path / ADAPTER_CONFIG)
    record = _read_json(path / BASE_RECORD) if (path / BASE_RECORD).is_file() else None
    if record is not None and not Path(record["path"]).is_dir() and record.get("relative"):
        record["path"] = str(path / record["relative"])  # the run dir was moved or copied
    if record is not None:
        check_base(record, str(path))
    base = Path(record["path"] if record else config.get("base_model_name_or_path") or "")
    if not (base / "config.json").is_file():
        raise ModelLoadError(f"{path / ADAPTER_CONFIG}: its base model {str(base) or '(none)'} is "
                             "not a local HF directory; set base_model_name_or_path to one")
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise ModelLoadError(f"{path / ADAPTER_WEIGHTS} is missing: an adapter directory needs it")
    return base


def adapter_hf_config(path: str | os.PathLike) -> dict[str, Any]:
    """The base's ``config.json``; a value model's architecture when the adapter has a value head."""
    from rlcore.models.hf_io import read_hf_config

    hf = dict(read_hf_config(adapter_base(path)))
    if _read_json(Path(path) / ADAPTER_CONFIG).get("task_type") == "SEQ_CLS":
        archs = [re.sub(r"(ForCausalLM|LMHeadModel)$", "ForSequenceClassification", a)
                 for a in hf.get("architectures") or []]
        hf.update(architectures=archs, num_labels=1)
    return hf


def merged_hf_state_dict(path: str | os.PathLike) -> tuple[Path, dict[str, torch.Tensor]]:
    """``(base directory, its HF state dict with the adapters of ``path`` folded in)``.

    Reads any plain LoRA adapter in PEFT format (rlcore's or another trainer's); the base is
    ``rlcore_base.json``'s (checksum checked), else ``base_model_name_or_path``.
    """
    from rlcore.models.hf_io import read_state_dict

    path = Path(path)
    config = _read_json(path / ADAPTER_CONFIG)
    if config.get("peft_type") != "LORA" or config.get("use_dora"):
        raise ModelLoadError(f"{path / ADAPTER_CONFIG}: only plain LoRA adapters can be read "
                             f"(peft_type {config.get('peft_type')!r}, use_dora "
                             f"{config.get('use_dora', False)})")
    base = adapter_base(path)
    sd, _ = read_state_dict(base)
    with safe_open(path / ADAPTER_WEIGHTS, framework="pt") as f:
        adapters = {k: f.get_tensor(k) for k in f.keys()}
    if config.get("target_parameters"):  # stacked experts: merge into the stacked layout
        sd = _stacked(sd, base)
    for key in (k for k in adapters if k.endswith(".lora_A.weight")):
        name = key.removeprefix(_PREFIX).removesuffix(".lora_A.weight")
        r, alpha = _pattern(config, "rank_pattern", name, config["r"]), _pattern(
            config, "alpha_pattern", name, config["lora_alpha"])
        scale = alpha / (r**0.5 if config.get("use_rslora") else r)
        a, b = adapters[key].float(), adapters[f"{_PREFIX}{name}.lora_B.weight"].float()
        if f"{name}.weight" not in sd and config.get("target_parameters"):
            weight_key, delta = _expert_delta(sd, name, a, b, scale, path / ADAPTER_WEIGHTS)
            sd[weight_key] = (sd[weight_key].float() + delta).to(sd[weight_key].dtype)
            continue
        delta = scale * (b @ a)
        weight = sd.get(f"{name}.weight")
        if weight is None:
            raise ModelLoadError(f"{path / ADAPTER_WEIGHTS}: adapter {name} has no weight "
                                 f"{name}.weight in the base {base}")
        if config.get("fan_in_fan_out"):
            delta = delta.t()
        sd[f"{name}.weight"] = (weight.float() + delta).to(weight.dtype)
    for key in (k for k in adapters if ".lora_" not in k):  # modules_to_save (a value head)
        sd[key.removeprefix(_PREFIX)] = adapters[key]
    return base, sd


def _stacked(sd: dict[str, torch.Tensor], base: Path) -> dict[str, torch.Tensor]:
    """The base's state dict with per-expert tensors stacked as its family reads them."""
    from rlcore.models.hf_io import read_hf_config, resolve_family
    from rlcore.models.moe_family import stack_experts

    fam = resolve_family(None, read_hf_config(base)["model_type"], f" (from {base / 'config.json'})")
    names = getattr(fam, "expert_names", None)
    return stack_experts(sd, names, f"{base} checkpoint") if names else sd


def _expert_delta(sd: dict[str, torch.Tensor], name: str, a: torch.Tensor, b: torch.Tensor,
                  scale: float, where: Path) -> tuple[str, torch.Tensor]:
    """``(weight key, delta)`` of a peft ``target_parameters`` adapter on module ``name`` (its
    ``.base_layer`` wrappers stripped): the 3-D weight there whose shape fits ``a`` and ``b``,
    ``[E, out, in]`` or transposed ``[E, in, out]``, and ``scale * B_e A_e`` per expert."""
    module = name.replace(".base_layer", "")
    out_dim, in_dim = b.shape[0], a.shape[1]
    fits = [(k, t.shape[1:] != (out_dim, in_dim)) for k, t in sd.items()
            if k.rpartition(".")[0] == module and t.ndim == 3 and a.shape[0] % t.shape[0] == 0
            and tuple(t.shape[1:]) in ((out_dim, in_dim), (in_dim, out_dim))]
    if len(fits) != 1:
        raise ModelLoadError(f"{where}: adapter {name} fits {len(fits)} stacked weights of "
                             f"{module} in the base (it needs exactly one [E, {out_dim}, {in_dim}])")
    weight_key, transposed = fits[0]
    n = sd[weight_key].shape[0]
    r = a.shape[0] // n
    delta = scale * torch.bmm(b.reshape(out_dim, r, n).permute(2, 0, 1), a.reshape(n, r, in_dim))
    return weight_key, delta.transpose(1, 2) if transposed else delta


def _pattern(config: dict[str, Any], field: str, name: str, default: Any) -> Any:
    for pattern, value in (config.get(field) or {}).items():
        if re.match(rf"(.*\.)?({pattern})$", name):
            return value
    return default


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{file} cannot be read as JSON: {err}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file} must hold a JSON object")
    return data

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
from rlcore.models.lora import adapter_state_dict

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
    tensors: dict[str, torch.Tensor] = {}
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
        target_modules=sorted(groups), rank_pattern=ranks, alpha_pattern=alphas,
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
    for key in (k for k in adapters if k.endswith(".lora_A.weight")):
        name = key.removeprefix(_PREFIX).removesuffix(".lora_A.weight")
        r, alpha = _pattern(config, "rank_pattern", name, config["r"]), _pattern(
            config, "alpha_pattern", name, config["lora_alpha"])
        scale = alpha / (r**0.5 if config.get("use_rslora") else r)
        delta = scale * (adapters[f"{_PREFIX}{name}.lora_B.weight"].float() @ adapters[key].float())
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

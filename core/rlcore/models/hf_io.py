"""Read and write HF model directories (config.json + safetensors) through a family plugin.

Never unpickles and never runs remote code: only ``config.json``, ``generation_config.json`` and
``*.safetensors`` are read. A value-head model is saved as HF ``*ForSequenceClassification``
(``score.weight``, num_labels=1). The source's special-token ids and generation config travel
with the model (``model.hf_generation``) into every export, and RoPE settings are written in
both the transformers-5 form (``rope_parameters``) and the 4.x form (``rope_theta``/``rope_scaling``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from rlcore.errors import ModelLoadError
from rlcore.models.family import ModelFamily
from rlcore.models.transformer import Transformer

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
GENERATION = "generation_config.json"
SPECIAL_TOKENS = ("bos_token_id", "eos_token_id", "pad_token_id")


def resolve_family(family: ModelFamily | str | None, model_type: str | None = None,
                   source: str = "") -> ModelFamily:
    """A family object: given, by registered name, or by HF ``model_type`` via the registry."""
    if isinstance(family, ModelFamily):
        return family
    from rlcore.errors import UnknownItemError
    from rlcore.plugins import registry

    try:
        if family is not None:
            return registry.load("families", family)
        return registry.family_for_model_type(model_type).load()
    except UnknownItemError as err:
        what = f"family {family!r}" if family is not None else f"model_type {model_type!r}{source}"
        from rlcore.first_party import install_hint

        hint = install_hint("families", family or model_type) or "Install its family plugin."
        raise ModelLoadError(f"no installed model family handles {what}: {err} {hint}") from err


def read_hf_config(path: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of an HF model directory, with errors that say what is missing (of a
    LoRA adapter directory: its base's, a value model's when the adapter has a value head)."""
    path = Path(path)
    from rlcore.models import peft_io

    if peft_io.is_adapter_dir(path):
        return peft_io.adapter_hf_config(path)
    if not path.is_dir():
        raise ModelLoadError(f"model directory {path} does not exist (expected an HF directory "
                             f"with config.json and *.safetensors)")
    file = path / "config.json"
    if not file.is_file():
        raise ModelLoadError(f"{file} is missing: an HF model directory needs config.json")
    try:
        hf = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{file} is not valid JSON: {err}") from err
    if "model_type" not in hf:
        raise ModelLoadError(f"{file} has no 'model_type'; add it (e.g. \"llama\") so that rlcore "
                             "can pick the model family")
    return hf


def weight_files(path: Path) -> dict[str, str]:
    """Map each HF parameter name to the safetensors file (relative name) that holds it (of a
    LoRA adapter directory: its base's)."""
    from rlcore.models import peft_io

    if peft_io.is_adapter_dir(path):
        return weight_files(peft_io.adapter_base(path))
    if (path / INDEX).is_file():
        index = json.loads((path / INDEX).read_text())
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelLoadError(f"{path / INDEX} has no 'weight_map'")
        for name in sorted(set(weight_map.values())):
            if not (path / name).is_file():
                raise ModelLoadError(f"{path / name} is missing: {path / INDEX} lists it as a shard")
        return weight_map
    if (path / SINGLE).is_file():
        with safe_open(path / SINGLE, framework="pt") as f:
            return dict.fromkeys(f.keys(), SINGLE)
    pickled = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
    hint = (f" Found {', '.join(pickled)}: rlcore never unpickles weights; convert them to "
            "safetensors first (e.g. save_pretrained(..., safe_serialization=True)).") if pickled else ""
    raise ModelLoadError(f"no {SINGLE} or {INDEX} in {path}.{hint}")


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors of an HF directory, plus the file each came from (of a LoRA adapter
    directory: the base's with the adapters folded in)."""
    path = Path(path)
    from rlcore.models import peft_io

    if peft_io.is_adapter_dir(path):
        base, merged = peft_io.merged_hf_state_dict(path)
        return merged, dict.fromkeys(merged, str(base / "(merged with the adapters)"))
    files = weight_files(path)
    sd: dict[str, torch.Tensor] = {}
    for name in sorted(set(files.values())):
        with safe_open(path / name, framework="pt") as f:
            for key in f.keys():
                sd[key] = f.get_tensor(key)
    missing = sorted(set(files) - set(sd))
    if missing:
        raise ModelLoadError(f"{path / INDEX} lists {missing[:5]} but no shard contains them")
    return sd, files


def load_pretrained(path: str | os.PathLike, dtype: torch.dtype | None = None,
                    value_head: bool = False, family: ModelFamily | str | None = None,
                    ) -> tuple[Transformer, str]:
    """Load an HF directory into a core Transformer; returns ``(model, family_name)``.

    With ``value_head=True`` a causal-LM checkpoint gets a fresh value head (its LM head is
    dropped), and a ``*ForSequenceClassification`` checkpoint keeps its ``score.weight``.
    """
    path = Path(path)
    hf = read_hf_config(path)
    fam = resolve_family(family, hf["model_type"], f" (from {path / 'config.json'})")
    cfg = dataclasses.replace(fam.config_from_hf(hf), value_head=value_head)
    archs = hf.get("architectures") or []
    if not value_head and any(a.endswith("ForSequenceClassification") for a in archs):
        raise ModelLoadError(f"{path / 'config.json'} describes {archs[0]} (a reward/value model); "
                             "load it with value_head=True")
    hf_sd, files = read_state_dict(path)
    origin = {id(t): (k, files[k]) for k, t in hf_sd.items()}
    if not value_head:
        hf_sd.pop("score.weight", None)
    elif "score.weight" not in hf_sd:
        hf_sd.pop("lm_head.weight", None)  # LM checkpoint -> critic: the head is replaced
    sd = fam.state_dict_from_hf(hf_sd, cfg)

    with torch.device("meta"):
        model = Transformer(cfg)
    expected = model.state_dict()
    fresh = {"value_head.weight"} if value_head and "value_head.weight" not in sd else set()
    missing = sorted(set(expected) - set(sd) - fresh)
    unexpected = sorted(set(sd) - set(expected))
    if missing or unexpected:
        raise ModelLoadError(f"{path}: the {fam.name} family produced a state dict that does not fit "
                             f"the model: missing {missing[:8]}, unexpected {unexpected[:8]}; check "
                             "that config.json matches the weights")
    for key, t in sd.items():
        if t.shape != expected[key].shape:
            src = origin.get(id(t))
            where = f"{src[0]!r} in {path / src[1]}" if src else f"core parameter {key!r} in {path}"
            raise ModelLoadError(f"shape mismatch for {where}: the checkpoint has {tuple(t.shape)} but "
                                 f"config.json implies {tuple(expected[key].shape)} for {key!r}; "
                                 "check config.json (sizes, heads, head_dim, vocab)")
    dtype = dtype or torch.float32
    model.load_state_dict({k: t.to(dtype) for k, t in sd.items()}, strict=not fresh, assign=True)
    if fresh:
        model.value_head.weight = torch.nn.Parameter(torch.empty(1, cfg.hidden_size, dtype=dtype))
        torch.nn.init.normal_(model.value_head.weight, std=0.02)
    model.hf_generation = read_generation_config(path, hf)
    return model, fam.name


def read_generation_config(path: Path, hf: dict[str, Any]) -> dict[str, Any]:
    """``generation_config.json`` (if any), with the special-token ids of ``config.json`` filling gaps."""
    gen: dict[str, Any] = {}
    file = path / GENERATION
    if file.is_file():
        try:
            gen = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise ModelLoadError(f"{file} is not valid JSON: {err}") from err
        if not isinstance(gen, dict):
            raise ModelLoadError(f"{file} must hold a JSON object, not {type(gen).__name__}")
    for key in SPECIAL_TOKENS:
        if gen.get(key) is None and hf.get(key) is not None:
            gen[key] = hf[key]
    return gen


def special_token_ids(model: Transformer, tokenizer: Any = None) -> dict[str, Any]:
    """bos/eos/pad ids to export: the source model's, else the tokenizer's (None when unknown)."""
    gen = getattr(model, "hf_generation", None) or {}
    ids = {key: gen.get(key) for key in SPECIAL_TOKENS}
    for key in SPECIAL_TOKENS:
        if ids[key] is None and tokenizer is not None:
            ids[key] = getattr(tokenizer, key, None)
    return ids


def legacy_rope(hf: dict[str, Any]) -> dict[str, Any]:
    """``rope_theta`` / ``rope_scaling`` (what transformers 4.x reads) from ``rope_parameters``;
    per-layer-type parameters (Gemma 3) give the global ones and ``rope_local_base_freq``."""
    params = dict(hf["rope_parameters"])
    local = {}
    if "full_attention" in params:
        local = {"rope_local_base_freq": params["sliding_attention"]["rope_theta"]}
        params = dict(params["full_attention"])
    theta = params.pop("rope_theta")
    kind = params.get("rope_type", "default")
    scaling = None if kind == "default" else {**params, "type": kind}  # 4.x also reads "type"
    return {"rope_theta": theta, "rope_scaling": scaling, **local}


def save_pretrained(model: Transformer, family_name: str, path: str | os.PathLike,
                    family: ModelFamily | None = None, max_shard_bytes: int = 5 * 2**30,
                    tokenizer: Any = None) -> Path:
    """Write ``model`` as an HF directory (config.json, generation_config.json, safetensors,
    sharded when large); special-token ids come from the source model, else ``tokenizer``."""
    fam = resolve_family(family if family is not None else family_name)
    cfg = model.config
    hf = fam.config_to_hf(cfg)
    hf["dtype"] = str(model.embed.weight.dtype).removeprefix("torch.")
    if "rope_parameters" in hf:
        hf.update(legacy_rope(hf))
    ids = special_token_ids(model, tokenizer)
    hf.update({k: v for k, v in ids.items() if v is not None})
    generation = {**(getattr(model, "hf_generation", None) or {}),
                  **{k: v for k, v in ids.items() if v is not None}}
    if cfg.value_head:
        hf.update(architectures=[fam.value_head_architecture(cfg)], num_labels=1,
                  id2label={"0": "LABEL_0"}, label2id={"LABEL_0": 0})
    sd = fam.state_dict_to_files(
        fam.state_dict_to_hf({k: v.detach() for k, v in model.state_dict().items()}, cfg), cfg)
    tensors, seen = {}, set()
    for key, t in sd.items():
        if t.data_ptr() in seen and hf.get("tie_word_embeddings", cfg.tie_embeddings):
            continue  # tied weights: HF re-ties them on load; safetensors refuses shared storage
        seen.add(t.data_ptr())
        tensors[key] = t.contiguous().cpu()

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    shards = _shard(tensors, max_shard_bytes)
    names = [SINGLE] if len(shards) == 1 else [
        f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards, strict=True):
        _atomic(path / name, lambda tmp, shard=shard: save_file(shard, tmp, metadata={"format": "pt"}))
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
                 "weight_map": {k: n for n, s in zip(names, shards, strict=True) for k in s}}
        _atomic(path / INDEX, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=2)))
    elif (path / INDEX).exists():
        (path / INDEX).unlink()  # a stale index would point HF at old shards
    if generation and not cfg.value_head:
        _atomic(path / GENERATION, lambda tmp: Path(tmp).write_text(json.dumps(generation, indent=2)))
    _atomic(path / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(hf, indent=2)))
    return path


def _shard(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    """Split into consecutive groups of at most ``max_bytes`` (one tensor may exceed it alone)."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = t
        size += nbytes
    return shards


def _atomic(target: Path, write) -> None:
    """Write via a temporary file in the same directory, then rename over ``target``."""
    tmp = target.with_name(f".{target.name}.tmp")
    write(str(tmp))
    shared_mode(tmp)
    os.replace(tmp, target)


def shared_mode(path: str | os.PathLike) -> None:
    """Give ``path`` the mode ``open()`` would (0644 under umask 022): safetensors writes 0600."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)

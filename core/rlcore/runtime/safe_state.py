"""Resume state that cannot run code when loaded: tensors in safetensors, the rest in JSON.

``save_tree(obj, stem)`` splits a nested state (dicts, lists, tuples, tensors, numbers,
strings, a few allow-listed DeepSpeed objects) into ``stem.safetensors`` and ``stem.json``;
``load_tree(stem)`` rebuilds it. Nothing is unpickled: an unknown type is refused on both sides.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rlcore.errors import RlcoreError
from rlcore.models.hf_io import shared_mode

# Plain objects that optimizer state dicts hold, rebuilt from their attributes (never unpickled).
ALLOWED_OBJECTS = frozenset({
    "deepspeed.runtime.fp16.loss_scaler:LossScaler",
    "deepspeed.runtime.fp16.loss_scaler:DynamicLossScaler",
    "deepspeed.utils.tensor_fragment:fragment_address",
})
_TYPE = "$type"


class UnsafeStateError(RlcoreError):
    """A state tree holds something that cannot be stored or loaded without running code."""


def save_tree(obj: Any, stem: Path) -> list[Path]:
    """Write ``obj`` as ``stem.safetensors`` + ``stem.json``; return the two paths."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(obj, tensors, where="state")
    unique, aliases = unique_tensors(tensors)
    files = [stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")]
    save_file(unique, str(files[0]), metadata={"format": "pt", "aliases": json.dumps(aliases)})
    shared_mode(files[0])
    with open(files[1], "w") as f:
        json.dump(tree, f, allow_nan=False)
    return files


def load_tree(stem: Path) -> Any:
    """Rebuild what :func:`save_tree` wrote at ``stem`` (tensors on the CPU)."""
    from safetensors import safe_open

    tensor_file, json_file = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(tensor_file), framework="pt") as f:
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    for name, target in aliases.items():
        tensors[name] = tensors[target]
    return _decode(json.loads(json_file.read_text()), tensors, json_file)


def unique_tensors(sd: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """Own, contiguous CPU copies; a tensor shared under two names (tied) is stored once."""
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, t in sd.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out, aliases


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)  # IntEnum (ZeroStageEnum) compares equal to its int
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else {_TYPE: "float", "value": repr(float(obj))}
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj
        return {_TYPE: "tensor", "key": key}
    if isinstance(obj, torch.Size):
        return {_TYPE: "size", "items": list(obj)}
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj) and _TYPE not in obj:
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {_TYPE: "dict", "items": [[_encode(k, tensors, where), _encode(v, tensors, f"{where}.{k}")]
                                         for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else {_TYPE: "tuple", "items": items}
    name = f"{type(obj).__module__}:{type(obj).__qualname__}"
    if name in ALLOWED_OBJECTS:
        return {_TYPE: "object", "class": name, "state": _encode(dict(vars(obj)), tensors, where)}
    raise UnsafeStateError(f"{where} is a {name}, which rlcore cannot store without pickling; "
                           "keep resume state to tensors, numbers, strings, lists and dicts")


def _decode(node: Any, tensors: dict[str, torch.Tensor], file: Path) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors, file) for v in node]
    if not isinstance(node, dict):
        return node
    kind = node.get(_TYPE)
    if kind is None:
        return {k: _decode(v, tensors, file) for k, v in node.items()}
    if kind == "tensor":
        if node.get("key") not in tensors:
            raise UnsafeStateError(f"{file} refers to tensor {node.get('key')!r}, which its "
                                   ".safetensors file does not hold")
        return tensors[node["key"]]
    if kind == "float":
        return float(node["value"])
    if kind == "size":
        return torch.Size(node["items"])
    if kind == "tuple":
        return tuple(_decode(v, tensors, file) for v in node["items"])
    if kind == "dict":
        return {_decode(k, tensors, file): _decode(v, tensors, file) for k, v in node["items"]}
    if kind == "object" and node.get("class") in ALLOWED_OBJECTS:
        module, qualname = node["class"].split(":")
        cls = getattr(importlib.import_module(module), qualname)
        obj = cls.__new__(cls)
        obj.__dict__.update(_decode(node["state"], tensors, file))
        return obj
    raise UnsafeStateError(f"{file} holds a {kind!r} entry ({node.get('class', '')}) that rlcore "
                           f"does not load; allowed objects: {', '.join(sorted(ALLOWED_OBJECTS))}")

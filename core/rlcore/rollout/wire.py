"""Messages between trainer rank 0 and rollout workers over a gloo process group of their own.

A message is a kind, a JSON-safe ``meta`` dict and named CPU tensors, sent as a length, a JSON
header and the raw tensors; nothing is pickled. The group lives beside the trainers' default
group (``torch.distributed.ProcessGroupGloo`` on a prefix of the launcher's store).
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

import torch
import torch.distributed as dist

from rlcore.rollout import ROLLOUT_ENV

_DTYPES = {str(t): t for t in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                               torch.int64, torch.int32, torch.bool, torch.uint8)}


def rollout_env() -> tuple[str, int, int] | None:
    """``(host, port, workers)`` of the rollout group, or None when the run has no workers."""
    value = os.environ.get(ROLLOUT_ENV)
    if not value:
        return None
    host, port, workers = value.rsplit(":", 2)
    return host, int(port), int(workers)


def connect(rank: int, timeout_s: float) -> tuple[Any, int]:
    """This process's handle on the rollout group, and the group's size (workers + 1)."""
    host, port, workers = rollout_env()
    store = dist.TCPStore(host, port, is_master=False,
                          timeout=datetime.timedelta(seconds=timeout_s))
    size = workers + 1
    group = dist.ProcessGroupGloo(dist.PrefixStore("rollout", store), rank, size,
                                  datetime.timedelta(seconds=timeout_s))
    return group, size


def send(group: Any, dst: int, kind: str, meta: dict[str, Any] | None = None,
         tensors: dict[str, torch.Tensor] | None = None, timeout_s: float | None = None) -> None:
    """Send one message to ``dst``; ``timeout_s`` bounds each transfer (else the group's)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in (tensors or {}).items()}
    header = json.dumps({"kind": kind, "meta": meta or {},
                         "tensors": [[k, str(v.dtype), list(v.shape)] for k, v in tensors.items()]})
    raw = torch.frombuffer(bytearray(header.encode()), dtype=torch.uint8)
    for t in (torch.tensor([raw.numel()], dtype=torch.int64), raw, *tensors.values()):
        work = group.send([t.reshape(-1).view(torch.uint8) if t.dtype == torch.bool else t], dst, 0)
        _wait(work, timeout_s, f"sending {kind!r} to rollout rank {dst}")


def recv(group: Any, src: int, timeout_s: float | None = None) -> tuple[str, dict, dict]:
    """The next message from ``src``: ``(kind, meta, tensors)``."""
    size = torch.zeros(1, dtype=torch.int64)
    _wait(group.recv([size], src, 0), timeout_s, f"waiting for rollout rank {src}")
    raw = torch.zeros(int(size), dtype=torch.uint8)
    _wait(group.recv([raw], src, 0), timeout_s, f"reading from rollout rank {src}")
    header = json.loads(bytes(raw.tolist()).decode())
    tensors = {}
    for name, dtype, shape in header["tensors"]:
        dt = _DTYPES[dtype]
        buf = torch.zeros(shape, dtype=torch.uint8 if dt == torch.bool else dt)
        _wait(group.recv([buf.reshape(-1)], src, 0), timeout_s, f"reading {name!r}")
        tensors[name] = buf.bool() if dt == torch.bool else buf
    return header["kind"], header["meta"], tensors


def _wait(work: Any, timeout_s: float | None, what: str) -> None:
    from rlcore.errors import RlcoreError

    try:
        if timeout_s:
            work.wait(datetime.timedelta(seconds=timeout_s))
        else:
            work.wait()
    except RuntimeError as exc:
        raise RlcoreError(f"rollout: {what} failed or timed out"
                          f"{f' after {timeout_s:g} s' if timeout_s else ''}: {exc}") from None


def pack(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged 1-D tensors as one flat tensor and their lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
    flat = torch.cat([s.reshape(-1) for s in seqs]) if seqs else torch.zeros(0)
    return flat, lengths


def unpack(flat: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
    """Inverse of :func:`pack`."""
    return list(torch.split(flat, lengths.tolist()))

"""Process-group setup and small collectives, always with a timeout."""

from __future__ import annotations

import datetime
import os
import socket
from typing import Any

# What torchrun and DeepSpeed's launcher set for each rank (env:// initialisation).
LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# What rlcore's launcher (rlcore.launch) sets for its ranks.
STORE_ENV = "RLCORE_STORE"          # HOST:PORT of the run's store
NODE_RANK_ENV = "RLCORE_NODE_RANK"  # set when node ranks are fixed (--node-rank, Slurm)
RANK_SHIFT_ENV = "RLCORE_RANK_SHIFT"  # nodes after node 0: minus node 0's rollout workers


def device() -> Any:
    """This rank's device: ``cuda:LOCAL_RANK`` on GPUs, else the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def init(timeout_s: float = 300.0) -> tuple[int, int]:
    """Join (or create) the process group; return ``(rank, world_size)``.

    A plain ``python`` process becomes a group of one on an in-memory store: no
    socket for a rendezvous. Ranks that rlcore's launcher starts join through its
    store (``RLCORE_STORE``), which listens only where the launcher bound it; under a
    plain torchrun or DeepSpeed launcher the environment names the group. Collectives
    time out after ``timeout_s`` so a lost peer ends the run instead of hanging it.
    """
    import deepspeed
    import torch
    import torch.distributed as dist

    from rlcore.runtime import jit_ops

    if not dist.is_initialized():
        jit_ops.skip_shm_comm()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(device())
        timeout = datetime.timedelta(seconds=timeout_s)
        if STORE_ENV in os.environ:
            store, rank_, world = worker_store(timeout_s)
            dist.init_process_group(backend, store=store, rank=rank_, world_size=world,
                                    timeout=timeout)
        elif not all(k in os.environ for k in LAUNCHER_ENV):  # no launcher: a group of one
            use_loopback_transport(os.environ)
            os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1,
                                    timeout=timeout)
        # DeepSpeed adopts an existing group, or creates it from the launcher's environment.
        deepspeed.init_distributed(dist_backend=backend, timeout=timeout, verbose=False)
    return dist.get_rank(), dist.get_world_size()


def worker_store(timeout_s: float) -> tuple[Any, int, int]:
    """This rank's ``(store, rank, world_size)`` from the launcher's store (``RLCORE_STORE``).

    With fixed node ranks (``RLCORE_NODE_RANK``) a rank is ``node_rank * nproc + local_rank``,
    so ``--node-rank`` and ``SLURM_PROCID`` decide the order of the ranks, not arrival order.
    """
    from torch.distributed import PrefixStore, TCPStore

    host, _, port = os.environ[STORE_ENV].rpartition(":")
    world = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    if NODE_RANK_ENV in os.environ:
        rank = int(os.environ[NODE_RANK_ENV]) * int(os.environ["LOCAL_WORLD_SIZE"]) + \
            int(os.environ["LOCAL_RANK"]) + int(os.environ.get(RANK_SHIFT_ENV, "0"))
        os.environ["RANK"] = str(rank)
    store = TCPStore(host.strip("[]"), int(port), None, False,
                     timeout=datetime.timedelta(seconds=timeout_s))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return PrefixStore(f"rlcore/pg/{attempt}", store), rank, world


def loopback_interface() -> str | None:
    """The name of the loopback network interface (``lo`` on Linux, ``lo0`` on macOS)."""
    names = [name for _, name in socket.if_nameindex()]
    return next((n for n in ("lo", "lo0") if n in names), None)


def use_loopback_transport(env: dict[str, str]) -> None:
    """Keep gloo's and NCCL's own sockets on the loopback interface, unless the user chose one."""
    name = loopback_interface()
    if name is not None:
        env.setdefault("GLOO_SOCKET_IFNAME", name)
        env.setdefault("NCCL_SOCKET_IFNAME", name)


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


# The ranks a dry run plans for (``rlcore train --dry-run --nproc N``): no process group then.
PLANNED_WORLD = [1]


def world_size() -> int:
    import torch.distributed as dist

    if PLANNED_WORLD[0] > 1:  # a dry run, even in a process that ran a group of one before
        return PLANNED_WORLD[0]
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def scatter_object(objs: list[Any] | None) -> Any:
    """Rank 0's ``objs[r]`` on each rank ``r`` (``objs`` is read on rank 0 only)."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return objs[0]
    out: list[Any] = [None]
    dist.scatter_object_list(out, objs, src=0)
    return out[0]


def mean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Average each metric over the ranks that report it."""
    gathered = all_gather_object(dict(metrics))
    keys = sorted({k for m in gathered for k in m})
    out = {}
    for k in keys:
        vals = [float(m[k]) for m in gathered if k in m]
        out[k] = sum(vals) / len(vals)
    return out


def all_reduce(values: list[float], op: str = "sum") -> list[float]:
    """``values`` summed (or maxed) elementwise over every rank, as floats."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [float(v) for v in values]
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.to(device())
    dist.all_reduce(t, op=ops[op])
    return t.cpu().tolist()

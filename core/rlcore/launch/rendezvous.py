"""Where the ranks of a run meet: one machine, several nodes, or a Slurm job step.

torch's TCP store listens on every interface whatever host it is given, and it is
unauthenticated. So rlcore opens the listening socket itself, bound to exactly one
address (the loopback address on one machine, ``--master-addr`` across nodes), and
hands it to the store (``master_listen_fd``). torchrun's c10d rendezvous and the
ranks' process group then use that store as clients. A run of one process needs no
store at all (:func:`rlcore.runtime.distributed.init`), which also owns the ranks' side:
:func:`~rlcore.runtime.distributed.worker_store` joins the store this module hosts.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
from dataclasses import dataclass
from typing import Any

from rlcore.errors import RlcoreError

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 29500


class LaunchError(RlcoreError):
    """The multi-node launch options or the Slurm environment do not describe a run."""


@dataclass(frozen=True)
class Rendezvous:
    """How the nodes of a run find each other.

    ``node_rank`` is None under ``--rdzv-endpoint``, where torchrun assigns node ranks.
    """

    nnodes: int = 1
    node_rank: int | None = 0
    master_addr: str = LOOPBACK
    master_port: int = 0  # 0: any free port (one machine only)
    source: str = "this machine"

    @property
    def endpoint(self) -> str:
        host = f"[{self.master_addr}]" if ":" in self.master_addr else self.master_addr
        return f"{host}:{self.master_port}"

    @property
    def single_machine(self) -> bool:
        return self.nnodes == 1


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface."""
    try:
        return ipaddress.ip_address(resolve(host)).is_loopback
    except (ValueError, LaunchError):
        return False


def resolve(host: str) -> str:
    """``host`` as an IP address (a name is looked up once)."""
    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as exc:
        raise LaunchError(f"cannot resolve the rendezvous host {host!r}: {exc.strerror}") from None


def from_options(nnodes: int | None, node_rank: int | None, master_addr: str | None,
                 master_port: int | None, rdzv_endpoint: str | None,
                 env: dict[str, str] | None = None) -> Rendezvous:
    """The rendezvous that ``rlcore train``'s launch options (or Slurm's environment) describe."""
    env = os.environ if env is None else env
    if rdzv_endpoint:
        if node_rank is not None or master_addr or master_port:
            raise LaunchError("--rdzv-endpoint replaces --node-rank, --master-addr and "
                              "--master-port; give either the endpoint or those three")
        host, _, port = rdzv_endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise LaunchError(f"--rdzv-endpoint {rdzv_endpoint!r}: expected HOST:PORT, "
                              "e.g. node01:29500")
        return Rendezvous(nnodes or 1, None, host.strip("[]"), int(port), "--rdzv-endpoint")
    if nnodes is None and node_rank is None and master_addr is None and in_slurm_step(env):
        return from_slurm(env, master_port)
    nnodes = nnodes or 1
    if nnodes == 1:
        if node_rank not in (None, 0):
            raise LaunchError(f"--node-rank {node_rank} needs --nnodes greater than {node_rank}")
        return Rendezvous(1, 0, master_addr or LOOPBACK, master_port or 0)
    if node_rank is None or not master_addr:
        raise LaunchError(f"--nnodes {nnodes} needs --node-rank R (0..{nnodes - 1}) and "
                          "--master-addr HOST (an address of node 0), or --rdzv-endpoint "
                          "HOST:PORT")
    if not 0 <= node_rank < nnodes:
        raise LaunchError(f"--node-rank {node_rank} is outside 0..{nnodes - 1} "
                          f"(--nnodes {nnodes})")
    return Rendezvous(nnodes, node_rank, master_addr, master_port or DEFAULT_PORT,
                      "--nnodes/--node-rank/--master-addr")


# ---------------------------------------------------------------------- Slurm


def in_slurm_step(env: dict[str, str]) -> bool:
    """Inside ``srun`` with more than one task (each task is one node of the run)."""
    return "SLURM_STEP_ID" in env and int(env.get("SLURM_NTASKS", "1") or 1) > 1


def from_slurm(env: dict[str, str], master_port: int | None = None) -> Rendezvous:
    """Node rank = ``SLURM_PROCID``, nodes = ``SLURM_NTASKS``, master = first host of the step.

    ``MASTER_ADDR`` / ``MASTER_PORT`` in the environment override the host and port; the
    default port is derived from the job id, so two jobs on one node do not collide.
    """
    try:
        ntasks, procid = int(env["SLURM_NTASKS"]), int(env["SLURM_PROCID"])
    except (KeyError, ValueError) as exc:
        raise LaunchError(f"incomplete Slurm environment ({exc}); run under srun, or give "
                          "--nnodes/--node-rank/--master-addr") from None
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or \
        env.get("SLURM_NODELIST", "")
    host = env.get("MASTER_ADDR") or (expand_nodelist(nodelist) or [""])[0]
    if not host:
        raise LaunchError("Slurm gives no node list (SLURM_JOB_NODELIST); set MASTER_ADDR")
    job = int(re.sub(r"\D", "", env.get("SLURM_JOB_ID", "0")) or 0)
    port = master_port or int(env.get("MASTER_PORT") or DEFAULT_PORT + 10 + job % 10000)
    return Rendezvous(ntasks, procid, host, port, f"Slurm job {job or '?'}")


def expand_nodelist(nodelist: str) -> list[str]:
    """Slurm's compact host list (``gpu[01-03,7],login1``) as host names, in order."""
    hosts: list[str] = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", nodelist):
        if plain:
            hosts.append(plain)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            for i in range(int(lo), int(hi or lo) + 1):
                hosts.append(f"{prefix}{i:0{len(lo)}d}")
    return hosts


# ---------------------------------------------------------------------- the store


@dataclass
class HostedStore:
    """The run's store, serving on ``port`` until :meth:`close`."""

    store: Any
    port: int

    def close(self) -> None:
        self.store = None  # the store owns the listening socket and closes it with itself


def host_store(addr: str, port: int, timeout_s: float = 300.0,
               required: bool = True) -> HostedStore | None:
    """Host the run's store on ``addr:port`` and nowhere else.

    When the address cannot be bound (not this machine's, or the port is taken), raise
    a :class:`LaunchError` saying so, or return None when not ``required`` (under
    ``--rdzv-endpoint`` another node hosts the store).
    """
    from torch.distributed import TCPStore

    ip = resolve(addr)
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((ip, port))
    except OSError as exc:
        sock.close()
        if not required:
            return None
        raise LaunchError(
            f"cannot host the rendezvous on {addr}:{port} ({exc.strerror}): node 0 hosts it, so "
            "--master-addr must be an address of node 0 and --master-port a free port "
            "there") from None
    sock.listen(512)
    bound = sock.getsockname()[1]
    store = TCPStore(ip, bound, None, True, timeout=datetime.timedelta(seconds=timeout_s),
                     wait_for_workers=False, multi_tenant=True, master_listen_fd=sock.detach())
    return HostedStore(store, bound)

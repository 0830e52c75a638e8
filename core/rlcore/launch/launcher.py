"""Start a run's ranks with an existing launcher, pass signals on, and name a failing rank.

- one process: the run happens in this process;
- ``nproc`` > 1 or several nodes: torchrun (``python -m rlcore.launch.torchrun``, which is
  ``torch.distributed.run`` plus signal forwarding and a failures file) with its c10d
  rendezvous on a store that this process hosts on one address (:mod:`.rendezvous`);
- ``hostfile``: DeepSpeed's multi-node runner (``python -m deepspeed.launcher.runner``).

Every rank runs ``python -m rlcore.launch.worker`` with the experiment name and
the resolved config written to ``RUN_DIR/config.yaml``. ``RUN_DIR/run.lock`` keeps a
second run out. SIGTERM / SIGINT are passed to every rank, which save and stop at the
next step boundary (:mod:`.stopping`); the ranks never outlive this process. When a
rank fails, :class:`RankFailedError` names it: the rank killed by a signal, else the
one whose exception came first (from torchrun's error files), with its traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rlcore.errors import DiskFullError, RlcoreError
from rlcore.launch import rendezvous
from rlcore.launch.rendezvous import LaunchError, Rendezvous
from rlcore.launch.rollout_procs import environment, rollout_workers
from rlcore.launch.runlock import RunDirLock
from rlcore.launch.torchrun import FAILURES_ENV
from rlcore.runtime.diskspace import writing
from rlcore.runtime.distributed import (
    NODE_RANK_ENV,
    RANK_SHIFT_ENV,
    STORE_ENV,
    use_loopback_transport,
)
from rlcore.runtime.stopping import DEFAULT_GRACE_S, GRACE_ENV, RunInterrupted, signal_name


class RankFailedError(RlcoreError):
    """A rank raised; the message holds its rank, exception and traceback."""

    def __init__(self, message: str, rank: int | None = None, returncode: int | None = None):
        super().__init__(message)
        self.rank = rank
        self.returncode = returncode


def write_config(config: Any, run_dir: Path) -> Path:
    """Write the resolved config as YAML (what every rank reads), after removing partial
    checkpoints a killed run left (they may be what filled the disk)."""
    from rlcore.config import to_yaml
    from rlcore.runtime.checkpoint import CheckpointManager

    for partial in CheckpointManager(run_dir).clean_partial():
        print(f"removed {partial}, a partial checkpoint left by an interrupted run")
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    try:
        with writing(tmp):
            tmp.write_text(to_yaml(config))
    except DiskFullError as err:
        tmp.unlink(missing_ok=True)
        raise DiskFullError(f"{err}; the run did not start and {path} is as it was. "
                            f"{err.remedy}, then run again", remedy=err.remedy) from None
    _keep_previous(path, tmp)
    os.replace(tmp, path)
    return path


def _keep_previous(path: Path, new: Path) -> None:
    """When ``path`` holds another config, keep it as ``config.previous.yaml`` and say what
    changed, so a run dir's config is never replaced silently."""
    import yaml

    if not path.is_file() or path.read_text() == new.read_text():
        return
    before, after = yaml.safe_load(path.read_text()) or {}, yaml.safe_load(new.read_text()) or {}
    changed = _changes(before, after)
    previous = path.with_name("config.previous.yaml")
    os.replace(path, previous)
    print(f"note: {path} now holds this run's config ({'; '.join(changed[:8]) or 'reformatted'}"
          f"{' ...' if len(changed) > 8 else ''}); the earlier one is in {previous}", flush=True)


def _changes(before: Any, after: Any, prefix: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [c for k in sorted(set(before) | set(after), key=str)
                for c in _changes(before.get(k), after.get(k), f"{prefix}{k}.")]
    return [] if before == after else [f"{prefix.rstrip('.')}: {before!r} -> {after!r}"]


def worker_args(experiment: str, config_path: Path | None, run_dir: Path, resume: Any) -> list[str]:
    if resume is True:
        resume_arg = "auto"
    elif not resume:
        resume_arg = "none"
    else:
        resume_arg = str(resume)
    args = ["--experiment", experiment, "--run-dir", str(run_dir), "--resume", resume_arg]
    if config_path is not None:
        args += ["--config", str(config_path)]
    return args


def torchrun_command(nproc: int, log_dir: Path, args: list[str],
                     rdzv: Rendezvous | None = None) -> list[str]:
    """torchrun on this node: c10d rendezvous at ``rdzv``'s store (hosted by an rlcore
    process, never by torchrun), no restarts, fast failure detection."""
    rdzv = rdzv or Rendezvous()
    return [
        sys.executable, "-m", "rlcore.launch.torchrun",
        "--nnodes", str(rdzv.nnodes), "--nproc-per-node", str(nproc),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv.endpoint, "--rdzv-id", "rlcore",
        "--rdzv-conf", "is_host=false",
        "--max-restarts", "0", "--monitor-interval", "0.5",
        "--log-dir", str(log_dir),
        "-m", "rlcore.launch.worker", *args,
    ]


def deepspeed_command(hostfile: Path, nproc: int | None, args: list[str]) -> list[str]:
    """DeepSpeed's runner across the machines of ``hostfile`` (pdsh/ssh by default)."""
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", str(hostfile)]
    if nproc:
        cmd += ["--num_gpus", str(nproc)]
    return [*cmd, "--module", "rlcore.launch.worker", *args]


# Errors a rank raises because another rank died first (gloo's words): never the cause.
SECONDARY_FAILURES = ("Connection closed by peer", "Connection reset by peer", "remote worker")


def collect_failures(log_dir: Path, rank_offset: int = 0) -> list[dict[str, Any]]:
    """Failures recorded in torchrun's per-rank ``error.json`` files, the likely cause first.

    Primary failures come before secondary ones (a peer's crash seen by a collective),
    then the earliest: by the error file's nanosecond mtime, then by torchrun's
    whole-second timestamp, then by rank. ``rank_offset`` turns local ranks into global ones.
    """
    found = []
    for path in sorted(log_dir.glob("**/error.json")):
        try:
            raw = json.loads(path.read_text())
            mtime_ns = path.stat().st_mtime_ns
        except (OSError, ValueError):
            continue
        msg = raw.get("message", raw)
        if isinstance(msg, str):
            text, info = msg, {}
        else:
            text, info = msg.get("message", ""), msg.get("extraInfo", {})
        local_rank = int(path.parent.name) if path.parent.name.isdigit() else None
        found.append({
            "rank": None if local_rank is None else local_rank + rank_offset,
            "message": text,
            "traceback": info.get("py_callstack", ""),
            "timestamp": int(info.get("timestamp", 0) or 0),
            "mtime_ns": mtime_ns,
            "file": str(path),
        })

    def order(f: dict[str, Any]) -> tuple:
        secondary = any(s in f["message"] for s in SECONDARY_FAILURES)
        return (secondary, f["mtime_ns"], f["timestamp"], f["rank"] if f["rank"] is not None else 0)

    return sorted(found, key=order)


def killed_ranks(failures_file: Path, rank_offset: int | None = None) -> list[dict[str, Any]]:
    """Ranks that a signal killed (no exception of their own), the first to die first.

    Read from the failures file that ``rlcore.launch.torchrun`` writes. With fixed node
    ranks, ``rank_offset`` (node rank * nproc) plus the local rank is the global rank.
    """
    try:
        failures = json.loads(failures_file.read_text())
    except (OSError, ValueError):
        return []
    killed = [f for f in failures if f.get("exitcode", 0) < 0 and not f.get("error_file")]
    for f in killed:
        if rank_offset is not None:
            f["rank"] = rank_offset + int(f["local_rank"])
    return sorted(killed, key=lambda f: (f.get("timestamp", 0), f["rank"]))


def _next_attempt_dir(run_dir: Path, node_rank: int | None) -> Path:
    logs = run_dir / "logs"
    if node_rank:  # each node of a multi-node run keeps its own launch logs
        logs = logs / f"node-{node_rank}"
    n = 0
    while (logs / f"launch-{n:03d}").exists():
        n += 1
    return logs / f"launch-{n:03d}"


def launch(
    experiment: str,
    config: Any,
    nproc: int = 1,
    hostfile: Path | None = None,
    run_dir: Path | str = "runs/default",
    resume: bool | str = True,
    dry_run: bool = False,
    timeout_s: float | None = None,
    rdzv: Rendezvous | None = None,
) -> dict[str, Any] | None:
    """Run ``experiment`` with ``config`` on ``nproc`` ranks per node; raise RankFailedError on failure.

    Returns the run summary (read from ``RUN_DIR/summary.json``), or None for a dry run.
    ``timeout_s`` bounds the whole launch (the ranks are killed when it passes). ``rdzv``
    says how several nodes meet (default: this machine only). A signal raises
    :class:`RunInterrupted` once every rank has saved and stopped.
    """
    from rlcore.runtime.experiment import build_experiment

    run_dir = Path(run_dir)
    rdzv = rdzv or Rendezvous()
    exp = build_experiment(experiment, config)
    graph = exp.graph()  # validate before starting any process
    if dry_run:
        print(graph.render("text"))
        return None
    if hostfile is not None and not rdzv.single_machine:
        raise LaunchError("--hostfile starts every node from this one (DeepSpeed's launcher); "
                          "drop --nnodes/--node-rank/--rdzv-endpoint, or drop --hostfile")
    if exp.rollout_processes() and rdzv.node_rank is None:
        raise LaunchError("rollout.procs: rollout workers start on node 0, beside trainer rank 0, "
                          "so each node needs a fixed --node-rank (not --rdzv-endpoint alone)")
    rollout = exp.rollout_processes() if rdzv.node_rank == 0 else 0  # workers: on node 0
    if rollout:
        if nproc <= rollout:
            raise LaunchError(f"rollout.procs={rollout} leaves no trainer on --nproc {nproc}: "
                              f"use --nproc {rollout + 1} or more (N-K processes train)")
        if hostfile is not None:
            raise LaunchError("rollout.procs: rollout workers start beside node 0's trainers, "
                              "which --hostfile (DeepSpeed's launcher) cannot do; launch each "
                              "node with --nnodes/--node-rank instead")
    with rollout_workers(rollout, run_dir / "logs") as rollout_env:
        if rdzv.node_rank and exp.rollout_processes():  # node 0 has that many fewer trainers
            rollout_env = {**rollout_env, RANK_SHIFT_ENV: str(-exp.rollout_processes())}
        return _launch_trainers(exp, experiment, config, nproc - rollout, hostfile, run_dir,
                                resume, timeout_s, rdzv, rollout_env)


def _launch_trainers(exp: Any, experiment: str, config: Any, nproc: int, hostfile: Path | None,
                     run_dir: Path, resume: bool | str, timeout_s: float | None,
                     rdzv: Rendezvous, extra_env: dict[str, str]) -> dict[str, Any] | None:
    """The trainer ranks: in this process when there is one, else under torchrun/DeepSpeed."""
    if nproc == 1 and hostfile is None and rdzv.single_machine:
        with RunDirLock(run_dir), environment(extra_env):
            if config is not None:
                write_config(config, run_dir)
            from rlcore.runtime.loop import run

            return run(exp, config, run_dir, resume=resume)

    store = None
    if hostfile is None:
        store, rdzv = _host_store(rdzv)
    lock = RunDirLock(run_dir)
    try:
        if rdzv.node_rank == 0 or store is not None:  # one node of a run holds the lock
            lock.acquire()
        config_path = write_config(config, run_dir) if config is not None else None
        args = worker_args(experiment, config_path, run_dir, resume)
        log_dir = _next_attempt_dir(run_dir, rdzv.node_rank)
        log_dir.mkdir(parents=True)
        env = {**os.environ, **extra_env}
        env.setdefault("OMP_NUM_THREADS", "1")
        if hostfile is not None:
            cmd = deepspeed_command(Path(hostfile), nproc if nproc > 1 else None, args)
        else:
            cmd = torchrun_command(nproc, log_dir, args, rdzv)
            env.update(_rank_env(rdzv, log_dir))
        started = time.time()
        returncode, signum = run_ranks(cmd, env, timeout_s, log_dir)
    finally:
        if store is not None:
            store.close()
        lock.release()
    summary = _read_summary(run_dir, since=started)
    if signum is not None:
        raise _interrupted(signum, summary)
    if returncode != 0:
        offset = rdzv.node_rank * nproc if rdzv.node_rank is not None else None
        raise rank_failure(log_dir, returncode, offset)
    return summary


def _host_store(rdzv: Rendezvous) -> tuple[Any, Rendezvous]:
    """This process's store for the rendezvous (None where another node hosts it), and
    ``rdzv`` with the port the store got when any free port would do."""
    import dataclasses

    if rdzv.node_rank not in (0, None):
        return None, rdzv
    hosted = rendezvous.host_store(rdzv.master_addr, rdzv.master_port,
                                   required=rdzv.node_rank == 0)
    if hosted is not None and rdzv.master_port == 0:
        rdzv = dataclasses.replace(rdzv, master_port=hosted.port)
    return hosted, rdzv


def _rank_env(rdzv: Rendezvous, log_dir: Path) -> dict[str, str]:
    """What the torchrun wrapper and the ranks read: the store, fixed node rank, transport."""
    env = {STORE_ENV: rdzv.endpoint, FAILURES_ENV: str(log_dir / "failures.json"),
           "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}  # no second store inside torchrun
    if rdzv.node_rank is not None:
        env[NODE_RANK_ENV] = str(rdzv.node_rank)
    if rendezvous.is_loopback(rdzv.master_addr):
        use_loopback_transport(env)
    return env


def run_ranks(cmd: list[str], env: dict[str, str], timeout_s: float | None,
              log_dir: Path) -> tuple[int, int | None]:
    """Run the launcher command until it ends; return ``(returncode, signal passed on)``.

    SIGTERM / SIGINT received meanwhile are passed to it (it passes them to the ranks).
    Whatever happens, no process it started is left running when this returns.
    """
    import psutil

    proc = subprocess.Popen(cmd, env=env, start_new_session=True)  # signals come from us
    forward = _Forwarder(proc.pid)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S)) + 30
    seen: dict[int, Any] = {}
    try:
        with forward:
            while True:
                try:
                    return proc.wait(timeout=0.5), forward.signum
                except subprocess.TimeoutExpired:
                    pass
                _remember_children(proc.pid, seen)
                now = time.monotonic()
                if forward.signum is not None and now - forward.first_at > grace:
                    print(f"rlcore: the ranks did not stop within {grace:.0f}s; killing them",
                          file=sys.stderr, flush=True)
                    return -signal.SIGKILL, forward.signum
                if deadline is not None and now > deadline:
                    raise RankFailedError(
                        f"the run did not finish within {timeout_s}s and was stopped; "
                        f"see {log_dir}")
    finally:
        _remember_children(proc.pid, seen)
        for p in [psutil.Process(proc.pid) if proc.poll() is None else None, *seen.values()]:
            try:
                if p is not None and p.is_running():
                    p.kill()
            except psutil.Error:
                pass
        proc.wait()


def _remember_children(pid: int, seen: dict[int, Any]) -> None:
    """Add the live descendants of ``pid`` to ``seen`` (the ranks live in their own sessions)."""
    import psutil

    try:
        for child in psutil.Process(pid).children(recursive=True):
            seen.setdefault(child.pid, child)
    except psutil.Error:
        pass


class _Forwarder:
    """While active, SIGTERM / SIGINT to this process are sent on to ``pid``."""

    def __init__(self, pid: int):
        self.pid, self.signum, self.first_at = pid, None, 0.0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Forwarder:
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum, self.first_at = signum, time.monotonic()
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass


def _read_summary(run_dir: Path, since: float) -> dict[str, Any] | None:
    """``summary.json`` if this launch wrote it (not one left by an earlier run)."""
    path = run_dir / "summary.json"
    try:
        if path.stat().st_mtime >= since - 1:
            return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    return None


def _interrupted(signum: int, summary: dict[str, Any] | None) -> RunInterrupted:
    if summary is not None and summary.get("status") == "interrupted":
        return RunInterrupted(signum, summary.get("error") or f"interrupted by "
                              f"{signal_name(signum)}", checkpoint=summary.get("checkpoint"))
    return RunInterrupted(signum, f"stopped by {signal_name(signum)} before the ranks reached "
                          "a step boundary; nothing was saved")


def rank_failure(log_dir: Path, returncode: int, rank_offset: int | None) -> RankFailedError:
    """The error that names the failing rank: killed by a signal, else the first exception.

    SIGTERM is how torchrun stops the surviving ranks after one fails, so a rank killed by
    SIGTERM is the cause only when no rank left an exception.
    """
    killed = killed_ranks(log_dir / "failures.json", rank_offset)
    failures = collect_failures(log_dir, rank_offset or 0)
    if failures:
        killed = [k for k in killed if k["signal"] != "SIGTERM"]
    if killed:
        first = killed[0]
        others = sorted({f["rank"] for f in killed[1:]} - {first["rank"]})
        also = f" (ranks {others} were killed too)" if others else ""
        hint = " (often the out-of-memory killer: see `dmesg`)" if first["signal"] == "SIGKILL" else ""
        return RankFailedError(
            f"rank {first['rank']} (pid {first['pid']}) was killed by {first['signal']}{hint}"
            f"{also}; the other ranks stopped because it was gone. Logs: {log_dir}",
            rank=first["rank"], returncode=returncode)
    if failures:
        first = failures[0]
        others = sorted({f["rank"] for f in failures[1:]} - {first["rank"]})
        also = f" (ranks {others} failed too)" if others else ""
        return RankFailedError(
            f"rank {first['rank']} failed{also}: {first['message']}\n"
            f"{first['traceback'].rstrip()}\n"
            f"(error file: {first['file']})",
            rank=first["rank"],
            returncode=returncode,
        )
    return RankFailedError(
        f"the launcher exited with status {returncode} and no rank left an error "
        f"file; logs are in {log_dir}",
        returncode=returncode,
    )

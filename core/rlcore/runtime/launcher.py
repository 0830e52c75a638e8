"""Start a run's ranks with an existing launcher and report a failing rank.

- one process: the run happens in this process;
- ``nproc`` > 1 on one machine: ``python -m torch.distributed.run --standalone``;
- ``hostfile``: DeepSpeed's multi-node runner (``python -m deepspeed.launcher.runner``).

Every rank runs ``python -m rlcore.runtime.worker`` with the experiment name and
the resolved config written to ``RUN_DIR/config.yaml``. When a rank raises,
torchrun stops the others; the launcher then raises :class:`RankFailedError`
with that rank's number, exception and traceback (from torchrun's error files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rlcore.errors import RlcoreError


class RankFailedError(RlcoreError):
    """A rank raised; the message holds its rank, exception and traceback."""

    def __init__(self, message: str, rank: int | None = None, returncode: int | None = None):
        super().__init__(message)
        self.rank = rank
        self.returncode = returncode


def write_config(config: Any, run_dir: Path) -> Path:
    """Write the resolved config as YAML (what every rank reads)."""
    from rlcore.config import to_yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "config.yaml"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(to_yaml(config))
    os.replace(tmp, path)
    return path


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


def torchrun_command(nproc: int, log_dir: Path, args: list[str]) -> list[str]:
    """``torch.distributed.run`` on this machine: no restarts, fast failure detection."""
    return [
        sys.executable, "-m", "torch.distributed.run",
        "--standalone", "--nproc-per-node", str(nproc),
        "--max-restarts", "0", "--monitor-interval", "0.5",
        "--log-dir", str(log_dir),
        "-m", "rlcore.runtime.worker", *args,
    ]


def deepspeed_command(hostfile: Path, nproc: int | None, args: list[str]) -> list[str]:
    """DeepSpeed's runner across the machines of ``hostfile`` (pdsh/ssh by default)."""
    cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--hostfile", str(hostfile)]
    if nproc:
        cmd += ["--num_gpus", str(nproc)]
    return [*cmd, "--module", "rlcore.runtime.worker", *args]


# Errors a rank raises because another rank died first (gloo's words): never the cause.
SECONDARY_FAILURES = ("Connection closed by peer", "Connection reset by peer", "remote worker")


def collect_failures(log_dir: Path) -> list[dict[str, Any]]:
    """Failures recorded in torchrun's per-rank ``error.json`` files, the likely cause first.

    Primary failures come before secondary ones (a peer's crash seen by a collective),
    then the earliest: by the error file's nanosecond mtime, then by torchrun's
    whole-second timestamp, then by rank.
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
            "rank": local_rank,
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


def _next_attempt_dir(run_dir: Path) -> Path:
    logs = run_dir / "logs"
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
) -> dict[str, Any] | None:
    """Run ``experiment`` with ``config`` on ``nproc`` ranks; raise RankFailedError on failure.

    Returns the run summary (read from ``RUN_DIR/summary.json``), or None for a dry run.
    ``timeout_s`` bounds the whole launch (the ranks are killed when it passes).
    """
    from rlcore.runtime.experiment import build_experiment

    run_dir = Path(run_dir)
    exp = build_experiment(experiment, config)
    graph = exp.graph()  # validate before starting any process
    if dry_run:
        print(graph.render("text"))
        return None
    config_path = write_config(config, run_dir) if config is not None else None

    if nproc == 1 and hostfile is None:
        from rlcore.runtime.loop import run

        return run(exp, config, run_dir, resume=resume)

    args = worker_args(experiment, config_path, run_dir, resume)
    log_dir = _next_attempt_dir(run_dir)
    log_dir.mkdir(parents=True)
    if hostfile is not None:
        cmd = deepspeed_command(Path(hostfile), nproc if nproc > 1 else None, args)
    else:
        cmd = torchrun_command(nproc, log_dir, args)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        proc = subprocess.run(cmd, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise RankFailedError(
            f"the run did not finish within {timeout_s}s and was stopped; see {log_dir}"
        ) from None
    if proc.returncode != 0:
        failures = collect_failures(log_dir)
        if failures:
            first = failures[0]
            others = sorted({f["rank"] for f in failures[1:]} - {first["rank"]})
            also = f" (ranks {others} failed too)" if others else ""
            raise RankFailedError(
                f"rank {first['rank']} failed{also}: {first['message']}\n"
                f"{first['traceback'].rstrip()}\n"
                f"(error file: {first['file']})",
                rank=first["rank"],
                returncode=proc.returncode,
            )
        raise RankFailedError(
            f"the launcher exited with status {proc.returncode} and no rank left an error "
            f"file (killed by a signal?); logs are in {log_dir}",
            returncode=proc.returncode,
        )
    summary_file = run_dir / "summary.json"
    return json.loads(summary_file.read_text()) if summary_file.exists() else None

"""Start-up time of the CLI against the cost of importing its libraries, measured in one run.

    python bench/startup.py --repeats 5
    python bench/startup.py --repeats 3 --before /path/to/other/venv/bin/rlcore

Round-robin over the commands (so machine load drifts across all of them alike), wall
time of each as a fresh process, median per command, and each as a ratio to the floor
``python -c "import torch, deepspeed, transformers"``. ``--before`` adds the same
one-step run by another install (e.g. the main branch's venv) for a before/after figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_STEP = ["train", "sft", "--set", "run.max_steps=1", "--set", "run.progress=false",
            "--no-resume"]


def commands(rlcore: str, before: str | None) -> dict[str, list[str]]:
    cmds = {
        "floor: import torch, deepspeed, transformers":
            [sys.executable, "-c", "import torch, deepspeed, transformers"],
        "rlcore --help": [rlcore, "--help"],
        "rlcore list-plugins": [rlcore, "list-plugins"],
        "rlcore train sft (1 step)": [rlcore, *ONE_STEP],
    }
    if before:
        cmds["before: rlcore train sft (1 step)"] = [before, *ONE_STEP]
    return cmds


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rlcore", default=str(Path(sys.executable).with_name("rlcore")))
    p.add_argument("--before", default=None, help="another rlcore executable, for comparison")
    args = p.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmds = commands(args.rlcore, args.before)
    walls: dict[str, list[float]] = {name: [] for name in cmds}
    work = Path(tempfile.mkdtemp(prefix="rlcore-startup-"))
    try:
        for cmd in cmds.values():  # warm the file cache (and any one-time build) first
            timed(cmd, work, env)
        for _ in range(args.repeats):
            for name, cmd in cmds.items():
                shutil.rmtree(work / "runs", ignore_errors=True)
                walls[name].append(timed(cmd, work, env))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    floor = statistics.median(next(iter(walls.values())))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs, load average "
          f"{load:.1f}, {args.repeats} round-robin repeats, python {sys.version.split()[0]}")
    print("| command | median wall | min | max | x floor |")
    print("|---|---|---|---|---|")
    for name, ws in walls.items():
        med = statistics.median(ws)
        print(f"| {name} | {med:.2f} s | {min(ws):.2f} s | {max(ws):.2f} s | {med / floor:.2f} |")


if __name__ == "__main__":
    main()

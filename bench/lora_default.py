"""The embedded default with LoRA: `rlcore train grpo --set actor.lora.r=16`, timed from start.

Runs the command as a user would (warm start included) for at most ``--limit-s`` seconds of wall
time (then SIGTERM: the run saves and stops), and reads held-out greedy accuracy with the
seconds since the command started: the gain reached within the limit (the bar: +0.2 within
5 minutes on 2 CPU cores) and when it first reached +0.2. ``--baseline`` runs full fine-tuning
(`rlcore train grpo`) the same way afterwards, for comparison. Prints a markdown table and
writes JSON with --out.

    python bench/lora_default.py [--limit-s 300] [--baseline] [--out FILE] [-- KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(sets: list[str], limit_s: float) -> dict:
    """Run ``rlcore train grpo`` with ``sets`` for at most ``limit_s``; its eval curve in time."""
    run_dir = Path(tempfile.mkdtemp(prefix="lora-default-")) / "run"
    rlcore = shutil.which("rlcore", path=str(Path(sys.executable).parent)) or "rlcore"
    command = [rlcore, "train", "grpo", "--run-dir", str(run_dir),
               *[a for s in sets for a in ("--set", s)]]
    load = os.getloadavg()[0]
    start, wall_start = time.monotonic(), time.time()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
    wall = time.monotonic() - start
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(round(r["time"] - wall_start, 1), r["step"], r["eval/accuracy"])
             for r in rows if "eval/accuracy" in r]
    first = evals[0][2]
    within = [e for e in evals if e[0] <= limit_s]
    reached = next((e[0] for e in evals if e[2] - first >= 0.2), None)
    shutil.rmtree(run_dir.parent, ignore_errors=True)
    return {"command": "rlcore train grpo" + "".join(f" --set {s}" for s in sets),
            "wall_s": round(wall, 1), "load_before": round(load, 2),
            "accuracy_first": first, "accuracy_best_within_limit": max(e[2] for e in within),
            "gain_within_limit": round(max(e[2] for e in within) - first, 4),
            "first_reached_plus_0.2_at_s": reached,
            "eval_curve_s_step_acc": evals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-s", type=float, default=300.0)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--baseline", action="store_true", help="also full fine-tuning")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("sets", nargs="*", help="extra KEY=VALUE settings, after --")
    args = parser.parse_args()
    runs = [timed_run([f"actor.lora.r={args.lora_r}", *args.sets], args.limit_s)]
    if args.baseline:
        runs.append(timed_run(list(args.sets), args.limit_s))
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{date}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"limit {args.limit_s:.0f} s\n")
    print("| command | held-out accuracy at start | best within the limit | gain | +0.2 first "
          "reached at | wall | load before |\n|---|---|---|---|---|---|---|")
    for r in runs:
        reached = f"{r['first_reached_plus_0.2_at_s']} s" if r["first_reached_plus_0.2_at_s"] else "-"
        print(f"| `{r['command']}` | {r['accuracy_first']:.3f} | "
              f"{r['accuracy_best_within_limit']:.3f} | {r['gain_within_limit']:+.3f} | {reached} | "
              f"{r['wall_s']} s | {r['load_before']} |")
    for r in runs:
        print(f"\n`{r['command']}` (seconds since start, step, accuracy): "
              f"{r['eval_curve_s_step_acc']}")
    if args.out:
        args.out.write_text(json.dumps({"date": date, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()

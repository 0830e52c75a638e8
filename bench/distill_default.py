"""The embedded default of `rlcore train distill`, timed from start.

Runs the command as a user would for at most ``--limit-s`` seconds (then SIGTERM: the run
saves and stops), with a fresh teacher cache (``--warm-cache``: the one left by the previous
run, to time a rerun), and reads the student's held-out greedy accuracy with the seconds since
the command started: the teacher's training time, the teacher's accuracy, the gain within the
limit (the bar: +0.2 within 5 minutes on 2 CPU cores) and when it first reached +0.2. Prints
a markdown table and writes JSON with --out.

    python bench/distill_default.py [--limit-s 300] [--warm-cache] [--out FILE] [-- KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "rlcore-bench-distill-cache"


def timed_run(sets: list[str], limit_s: float) -> dict:
    """Run ``rlcore train distill`` with ``sets`` for at most ``limit_s``; its eval curve."""
    run_dir = Path(tempfile.mkdtemp(prefix="distill-default-")) / "run"
    rlcore = shutil.which("rlcore", path=str(Path(sys.executable).parent)) or "rlcore"
    sets = [f"teacher.cache_dir={CACHE}", *sets]
    command = [rlcore, "train", "distill", "--run-dir", str(run_dir),
               *[a for s in sets for a in ("--set", s)]]
    load = os.getloadavg()[0]
    start, wall_start = time.monotonic(), time.time()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate()
    wall = time.monotonic() - start
    trained = re.search(r"teacher: trained in (\d+) s", out)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [(round(r["time"] - wall_start, 1), r["step"], r["eval/accuracy"])
             for r in rows if "eval/accuracy" in r]
    teacher = next((r["eval/teacher_accuracy"] for r in rows if "eval/teacher_accuracy" in r), None)
    first = evals[0][2]
    within = [e for e in evals if e[0] <= limit_s]
    reached = next((e[0] for e in evals if e[2] - first >= 0.2), None)
    shutil.rmtree(run_dir.parent, ignore_errors=True)
    return {"command": "rlcore train distill" + "".join(f" --set {s}" for s in sets[1:]),
            "wall_s": round(wall, 1), "load_before": round(load, 2),
            "teacher_train_s": int(trained.group(1)) if trained else None,  # None: reused
            "teacher_accuracy": teacher, "first_eval_at_s": evals[0][0],
            "accuracy_first": first, "accuracy_best_within_limit": max(e[2] for e in within),
            "gain_within_limit": round(max(e[2] for e in within) - first, 4),
            "first_reached_plus_0.2_at_s": reached, "eval_curve_s_step_acc": evals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-s", type=float, default=300.0)
    parser.add_argument("--warm-cache", action="store_true", help="keep the cached teacher")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("sets", nargs="*", help="extra KEY=VALUE settings, after --")
    args = parser.parse_args()
    if not args.warm_cache:
        shutil.rmtree(CACHE, ignore_errors=True)
    r = timed_run(list(args.sets), args.limit_s)
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"{date}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"limit {args.limit_s:.0f} s, teacher cache {'warm' if args.warm_cache else 'cold'}\n")
    reached = f"{r['first_reached_plus_0.2_at_s']} s" if r["first_reached_plus_0.2_at_s"] else "-"
    print("| command | teacher training | teacher accuracy | student accuracy at start (s) | "
          "best within the limit | gain | +0.2 first reached at | wall | load before |\n"
          "|---|---|---|---|---|---|---|---|---|")
    teacher = "reused" if r["teacher_train_s"] is None else f"{r['teacher_train_s']} s"
    print(f"| `{r['command']}` | {teacher} | {r['teacher_accuracy']:.3f} | "
          f"{r['accuracy_first']:.3f} ({r['first_eval_at_s']} s) | "
          f"{r['accuracy_best_within_limit']:.3f} | {r['gain_within_limit']:+.3f} | {reached} | "
          f"{r['wall_s']} s | {r['load_before']} |")
    print(f"\n(seconds since start, step, accuracy): {r['eval_curve_s_step_acc']}")
    if args.out:
        args.out.write_text(json.dumps({"date": date, "run": r}, indent=2) + "\n")


if __name__ == "__main__":
    main()

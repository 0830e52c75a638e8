"""The embedded multi-turn default: `rlcore train grpo --set env.name=calculator`, timed.

Runs the command as a user would (warm start included), then reads the run's metrics:
held-out greedy accuracy first -> last (the bar: +0.25 within 10 minutes on 2 CPU cores),
the share of valid tool calls in the sampled episodes over the first and the last 10 steps,
turns per episode, and the wall time. Prints a markdown table and writes JSON with --out.

    python bench/calculator_env.py [--run-dir DIR] [--out FILE] [-- --set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summarize(rows: list[dict]) -> dict:
    """First and last eval, sampled tool-call validity early and late, turns, steps."""
    evals = [r for r in rows if "eval/accuracy" in r]
    train = [r for r in rows if "env/tool_call_valid_frac" in r]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    valid = [r["env/tool_call_valid_frac"] for r in train]
    return {
        "steps": train[-1]["step"],
        "accuracy_first": evals[0]["eval/accuracy"], "accuracy_last": evals[-1]["eval/accuracy"],
        "accuracy_gain": evals[-1]["eval/accuracy"] - evals[0]["eval/accuracy"],
        "eval_curve": {r["step"]: round(r["eval/accuracy"], 4) for r in evals},
        "valid_calls_first10": mean(valid[:10]), "valid_calls_last10": mean(valid[-10:]),
        "turns_first10": mean([r["env/turns_mean"] for r in train[:10]]),
        "turns_last10": mean([r["env/turns_mean"] for r in train[-10:]]),
        "reward_first10": mean([r["reward/mean"] for r in train[:10]]),
        "reward_last10": mean([r["reward/mean"] for r in train[-10:]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("sets", nargs="*", help="extra `--set KEY=VALUE` pairs, after --")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="calculator-")) / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    rlcore = shutil.which("rlcore", path=str(Path(sys.executable).parent)) or "rlcore"
    command = [rlcore, "train", "grpo", "--set", "env.name=calculator",
               "--run-dir", str(run_dir), *[a for s in args.sets for a in ("--set", s)]]
    load = os.getloadavg()[0]
    start = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - start
    result = {"command": " ".join(["rlcore", *command[1:]]).replace(str(run_dir), "RUN"), "wall_s": round(wall, 1),
              "load_before": round(load, 2), "cpus": os.cpu_count(),
              "omp_threads": os.environ.get("OMP_NUM_THREADS"), "machine": platform.machine(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              **summarize(read_metrics(run_dir))}
    print(f"| command | `{result['command']}` |\n|---|---|")
    for key in ("wall_s", "steps", "accuracy_first", "accuracy_last", "accuracy_gain",
                "valid_calls_first10", "valid_calls_last10", "turns_first10", "turns_last10",
                "reward_first10", "reward_last10", "load_before", "date"):
        value = result[key]
        print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    print(f"| eval curve | {result['eval_curve']} |")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

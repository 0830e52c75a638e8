"""Run the embedded default runs that the README and docs quote, and rewrite their figures.

Every figure the docs give for a run of ``rlcore train sft|rm|dpo|ppo|grpo|remax`` on the
embedded default (wall time, losses, accuracies, eval curves) sits in a block that this
script writes::

    <!-- measured: NAME -->
    ... a table or a sentence, with the date and the machine ...
    <!-- /measured -->

NAME is one of ``VIEWS``. Each view is drawn from one or more measurements (``RUNS``): a
measurement runs its commands into ``--runs-dir`` (default ``runs/measure-docs``), reads
their ``metrics.jsonl`` / ``summary.json`` and times them. Results are kept in
``docs/measured.json``, so ``--only`` re-measures a subset and every block is redrawn from
the newest result of each measurement.

Usage:
    .venv/bin/python scripts/measure_docs.py                  # every run
    .venv/bin/python scripts/measure_docs.py --only sft,ppo   # a subset
    .venv/bin/python scripts/measure_docs.py --render         # redraw from docs/measured.json
    .venv/bin/python scripts/measure_docs.py --check          # the markers only, no training

The runs inherit the environment, ``OMP_NUM_THREADS`` included (the stamp names it): on a
machine whose cores others keep busy, ``OMP_NUM_THREADS=1`` is much faster than the default.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "measured.json"
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXCLUDED = {ROOT / "docs" / "agents.md"}  # its calculator figures are measured elsewhere

BLOCK = re.compile(r"(?P<open><!-- measured: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /measured -->)",
                   re.S)
OPEN = re.compile(r"<!--\s*measured:\s*(?P<name>[^ ]*?)\s*-->")
CLOSE = "<!-- /measured -->"


# ------------------------------------------------------------------ the machine

def machine() -> dict:
    """CPU count and model, torch version, OMP_NUM_THREADS, load average, commit."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        torch = version("torch")
    except Exception:  # noqa: BLE001 - not installed: say so, measure anyway
        torch = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"cpus": os.cpu_count(), "cpu_model": model, "torch": torch,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "load_start": round(os.getloadavg()[0], 2), "commit": commit}


def stamp(result: dict) -> str:
    m = result["machine"]
    return (f"{result['date']}, commit {m['commit']}: {m['cpus']} × {m['cpu_model']}, torch "
            f"{m['torch']}, `OMP_NUM_THREADS={m['omp_num_threads']}`, load average "
            f"{m['load_start']:.2f} at the start, {m['load_end']:.2f} at the end (a shared machine "
            "is slower than a quiet one)")


# ------------------------------------------------------------------ running and reading

def rlcore(*args: str, log: Path, env: dict | None = None) -> float:
    """Run ``rlcore ARGS`` (stdout and stderr to ``log``; ``env`` over this environment);
    return its wall time in seconds."""
    exe = Path(sys.executable).with_name("rlcore")
    command = [str(exe) if exe.exists() else "rlcore", *args]
    print("$", *[f"{k}={v}" for k, v in (env or {}).items()], "rlcore", *args, flush=True)
    start = time.monotonic()
    with open(log, "w") as f:
        done = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, **(env or {})})
    wall = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"measure_docs: `rlcore {' '.join(args)}` failed ({done.returncode}); see {log}")
    return round(wall, 1)


def output(*args: str) -> str:
    """The stdout of ``rlcore ARGS`` (for transcripts the docs show)."""
    exe = Path(sys.executable).with_name("rlcore")
    done = subprocess.run([str(exe) if exe.exists() else "rlcore", *args], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"measure_docs: `rlcore {' '.join(args)}` failed:\n{done.stderr}")
    return done.stdout.rstrip("\n")


def curves(run_dir: Path) -> dict[str, list[list[float]]]:
    """Every metric of ``metrics.jsonl`` as ``[[step, value], ...]``."""
    out: dict[str, list[list[float]]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        for k, v in row.items():
            if k not in ("step", "time"):
                out.setdefault(k, []).append([row["step"], v])
    return out


def read_run(run_dir: Path, wall_s: float, keys: list[str]) -> dict:
    """The run's wall time, steps and summary elapsed time; for each of ``keys``, its first,
    last and largest value and the mean of its last 50, and the whole curve of the evals."""
    summary = json.loads((run_dir / "summary.json").read_text())
    c = curves(run_dir)
    return {"wall_s": wall_s, "steps": summary["steps"], "elapsed_s": summary["elapsed_s"],
            "status": summary["status"], "stats": {k: stats(c[k]) for k in keys if k in c},
            "curves": {k: c[k] for k in keys if k in c and k.startswith("eval/")}}


def stats(curve: list[list[float]]) -> dict:
    values = [v for _, v in curve]
    return {"first": curve[0], "last": curve[-1], "max": max(values),
            "mean_last_50": sum(values[-50:]) / len(values[-50:])}


def fresh(run_dir: Path) -> Path:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    return run_dir


# ------------------------------------------------------------------ measurements

RL_KEYS = ["eval/accuracy", "reward/mean", "gen/logprob_drift"]


def measure_sft(runs: Path) -> dict:
    run_dir = fresh(runs / "sft")
    wall = rlcore("train", "sft", "--run-dir", str(run_dir), log=runs / "sft.log")
    result = read_run(run_dir, wall, ["actor_train/loss", "eval/accuracy"])
    result["eval_greedy"] = output("eval", str(run_dir))
    result["eval_sampled"] = output("eval", str(run_dir), "--samples", "8", "--temperature", "1.0",
                                    "--pass-k", "1", "--pass-k", "8",
                                    "-o", str(run_dir / "eval" / "sampled.jsonl"))
    result["plot"] = output("plot", str(run_dir), "--width", "40")
    png = ROOT / "docs" / "images" / "sft-curves.png"
    try:
        import matplotlib  # noqa: F401

        output("plot", str(run_dir), "-o", str(png))
        result["png"] = str(png.relative_to(ROOT))
    except ImportError:
        print(f"measure_docs: matplotlib is not installed: {png} is left as it is", flush=True)
    return result


def measure_sft_one_thread(runs: Path) -> dict:
    """The sft run again with one torch thread: on busy cores the default can be far slower."""
    run_dir = fresh(runs / "sft-1thread")
    wall = rlcore("train", "sft", "--run-dir", str(run_dir), log=runs / "sft-1thread.log",
                  env={"OMP_NUM_THREADS": "1"})
    return {**read_run(run_dir, wall, ["actor_train/loss", "eval/accuracy"]),
            "omp_num_threads": "1"}


def measure_rl(name: str) -> Callable[[Path], dict]:
    def measure(runs: Path) -> dict:
        run_dir = fresh(runs / name)
        wall = rlcore("train", name, "--run-dir", str(run_dir), log=runs / f"{name}.log")
        result = read_run(run_dir, wall, RL_KEYS)
        warm = run_dir / "warm_start" / "summary.json"
        if warm.is_file():
            result["warm_start_elapsed_s"] = json.loads(warm.read_text())["elapsed_s"]
        return result

    return measure


def measure_scratch(name: str, keys: list[str]) -> Callable[[Path], dict]:
    def measure(runs: Path) -> dict:
        run_dir = fresh(runs / name)
        wall = rlcore("train", name, "--run-dir", str(run_dir), log=runs / f"{name}.log")
        return read_run(run_dir, wall, keys)

    return measure


FROM_SFT = ["--set", "dataset.embedded_max_operand=99", "--set", "train.optimizer.lr=3e-4",
            "--set", "run.max_steps=300"]


def measure_from_sft(name: str, keys: list[str]) -> Callable[[Path], dict]:
    """``name`` from the sft measurement's checkpoint, with experiments.md's overrides."""

    def measure(runs: Path) -> dict:
        checkpoints = sorted((runs / "sft" / "checkpoints").glob("step-*"))
        if not checkpoints:
            sys.exit(f"measure_docs: {name}-from-sft needs the sft run in {runs / 'sft'}: "
                     "measure sft first (--only sft,...)")
        run_dir = fresh(runs / f"{name}-from-sft")
        wall = rlcore("train", name, "--run-dir", str(run_dir), "--set",
                      f"actor.path={checkpoints[-1] / 'actor'}", *FROM_SFT,
                      log=runs / f"{name}-from-sft.log")
        return read_run(run_dir, wall, keys)

    return measure


DPO_KEYS = ["eval/reward_accuracy", "eval/reward_margin", "actor_train/rewards/accuracy",
            "actor_train/rewards/margin", "actor_train/loss"]
RM_KEYS = ["eval/accuracy", "rm_train/accuracy", "rm_train/loss"]

# Measurement name -> what it runs. Order matters: the *-from-sft runs use sft's checkpoint.
RUNS: dict[str, Callable[[Path], dict]] = {
    "sft": measure_sft,
    "sft-1thread": measure_sft_one_thread,
    "ppo": measure_rl("ppo"),
    "grpo": measure_rl("grpo"),
    "remax": measure_rl("remax"),
    "rm": measure_scratch("rm", RM_KEYS),
    "dpo": measure_scratch("dpo", DPO_KEYS),
    "dpo-from-sft": measure_from_sft("dpo", DPO_KEYS),
    "rm-from-sft": measure_from_sft("rm", RM_KEYS),
}


# ------------------------------------------------------------------ views: what the docs show

def fmt(x: float) -> str:
    return f"{x:.3f}" if abs(x) >= 0.001 or x == 0 else f"{x:.1e}"


def duration(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{int(s // 60)} min {s % 60:02.0f} s"


def first_last(result: dict, key: str) -> str:
    st = result["stats"].get(key)
    if not st:
        return "-"
    (s0, v0), (s1, v1) = st["first"], st["last"]
    return f"{fmt(v0)} → {fmt(v1)} (step {s0:.0f} → {s1:.0f})"


def series(result: dict, key: str) -> str:
    """``step: value`` at each logged step."""
    return ", ".join(f"{step:.0f}: {v:.3f}" for step, v in result["curves"].get(key, []))


def measured_by(results: dict, names: list[str]) -> str:
    if len(names) == 1:
        return f"Measured by `scripts/measure_docs.py` on {stamp(results[names[0]])}."
    lines = [f"- `{n}`: {stamp(results[n])}" for n in names]
    return "Measured by `scripts/measure_docs.py`:\n\n" + "\n".join(lines)


def view_sft(r: dict) -> str:
    s, one = r["sft"], r["sft-1thread"]
    threads = s["machine"]["omp_num_threads"]
    return (f"| `rlcore train sft` | measured |\n|---|---|\n"
            f"| wall time of the command (startup included), `OMP_NUM_THREADS={threads}` | "
            f"{duration(s['wall_s'])} |\n"
            f"| the same, `OMP_NUM_THREADS=1` (the same losses and accuracy: "
            f"{'yes' if one['stats'] == s['stats'] else 'no'}) | {duration(one['wall_s'])} |\n"
            f"| steps | {s['steps']} |\n"
            f"| `actor_train/loss` | {first_last(s, 'actor_train/loss')} |\n"
            f"| `actor_train/loss`, mean of the last 50 steps | "
            f"{fmt(s['stats']['actor_train/loss']['mean_last_50'])} |\n"
            f"| `eval/accuracy` (64 held-out sums, greedy exact match) | "
            f"{first_last(s, 'eval/accuracy')} |\n\n" + measured_by(r, ["sft", "sft-1thread"]))


def rl_rows(r: dict, names: list[str]) -> str:
    rows = ["| run | wall time (of it, the warm start's training) | `eval/accuracy` (256 held-out sums, greedy) "
            "| `reward/mean` (sampled answers) | largest `gen/logprob_drift` |",
            "|---|---|---|---|---|"]
    for n in names:
        x = r[n]
        drift = x["stats"].get("gen/logprob_drift", {}).get("max", 0.0)
        warm = f" ({x['warm_start_elapsed_s']:.0f} s)" if "warm_start_elapsed_s" in x else ""
        rows.append(f"| `rlcore train {n}` | {duration(x['wall_s'])}{warm} | "
                    f"{first_last(x, 'eval/accuracy')} | {first_last(x, 'reward/mean')} | "
                    f"{drift:.1e} |")
    return "\n".join(rows)


def view_ppo(r: dict) -> str:
    return (rl_rows(r, ["ppo"]) + "\n\nThe held-out accuracy at each eval (step: accuracy): "
            f"{series(r['ppo'], 'eval/accuracy')}.\n\n" + measured_by(r, ["ppo"]))


def view_grpo_remax(r: dict) -> str:
    return (rl_rows(r, ["grpo", "remax"]) + "\n\nThe GRPO eval curve (step: accuracy): "
            f"{series(r['grpo'], 'eval/accuracy')}.\n\nThe ReMax eval curve (step: accuracy): "
            f"{series(r['remax'], 'eval/accuracy')}.\n\n" + measured_by(r, ["grpo", "remax"]))


def scratch_rows(r: dict, names: list[str], label: Callable[[str], str]) -> str:
    rows = ["| run | wall time | held-out metric at each eval (step: value) | training metric, last step |",
            "|---|---|---|---|"]
    for n in names:
        x = r[n]
        if n.startswith("dpo"):
            held = (f"`eval/reward_accuracy` {series(x, 'eval/reward_accuracy')}; "
                    f"`eval/reward_margin` {series(x, 'eval/reward_margin')}")
            train = (f"`actor_train/rewards/accuracy` {last(x, 'actor_train/rewards/accuracy')}, "
                     f"`actor_train/rewards/margin` {last(x, 'actor_train/rewards/margin')}")
        elif n.startswith("rm"):
            held = f"`eval/accuracy` {series(x, 'eval/accuracy')}"
            train = f"`rm_train/accuracy` {last(x, 'rm_train/accuracy')}"
        else:
            held = f"`eval/accuracy` {first_last(x, 'eval/accuracy')}"
            train = f"`actor_train/loss` {last(x, 'actor_train/loss')}"
        rows.append(f"| {label(n)} | {duration(x['wall_s'])} | {held} | {train} |")
    return "\n".join(rows)


def last(result: dict, key: str) -> str:
    st = result["stats"].get(key)
    return fmt(st["last"][1]) if st else "-"


def view_scratch(r: dict) -> str:
    names = ["sft", "rm", "dpo"]
    return (scratch_rows(r, names, lambda n: f"`rlcore train {n}`") + "\n\n"
            + measured_by(r, names))


def view_from_sft(r: dict) -> str:
    names = ["dpo-from-sft", "rm-from-sft"]
    labels = {"dpo-from-sft": "`dpo` from the SFT checkpoint (command above)",
              "rm-from-sft": "`rm`, same overrides"}
    return scratch_rows(r, names, labels.__getitem__) + "\n\n" + measured_by(r, names)


def as_runs_sft(text: str) -> str:
    """Command output with the measurement's run directory written as the docs' ``runs/sft``."""
    return re.sub(r"\S*/sft\b", "runs/sft", text)


def view_sft_eval(r: dict) -> str:
    s = r["sft"]
    runs = "runs/sft"
    greedy = f"$ rlcore eval {runs}\n" + as_runs_sft(s["eval_greedy"])
    sampled = (f"$ rlcore eval {runs} --samples 8 --temperature 1.0 --pass-k 1 --pass-k 8 "
               f"-o {runs}/eval/sampled.jsonl\n" + as_runs_sft(s["eval_sampled"]))
    return ("<!-- docs-test: not run: needs the checkpoint of the sft run -->\n```\n"
            + greedy + "\n" + sampled + "\n```\n\n" + measured_by(r, ["sft"]))


def view_sft_plot(r: dict) -> str:
    s = r["sft"]
    return ("<!-- docs-test: not run: needs the sft run -->\n```\n$ rlcore plot runs/sft --width 40\n"
            + as_runs_sft(s["plot"]) + "\n```\n\n" + measured_by(r, ["sft"]))


@dataclass(frozen=True)
class View:
    needs: tuple[str, ...]
    render: Callable[[dict], str]


# Marker name -> the measurements it shows and how.
VIEWS: dict[str, View] = {
    "sft": View(("sft", "sft-1thread"), view_sft),
    "sft-eval": View(("sft",), view_sft_eval),
    "sft-plot": View(("sft",), view_sft_plot),
    "ppo": View(("ppo",), view_ppo),
    "grpo-remax": View(("grpo", "remax"), view_grpo_remax),
    "scratch": View(("sft", "rm", "dpo"), view_scratch),
    "from-sft": View(("dpo-from-sft", "rm-from-sft"), view_from_sft),
}


# ------------------------------------------------------------------ the docs' blocks

def check(files: list[Path] | None = None) -> list[str]:
    """Problems with the marker blocks: unknown names, unclosed or nested blocks."""
    problems = []
    for path in files if files is not None else DOC_FILES:
        if path in EXCLUDED:
            continue
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        open_at = None
        for i, line in enumerate(path.read_text().splitlines(), 1):
            m = OPEN.search(line)
            if m:
                if open_at is not None:
                    problems.append(f"{where}:{i}: a measured block inside the one of line {open_at}")
                open_at = i
                if m.group("name") not in VIEWS:
                    problems.append(f"{where}:{i}: unknown measurement {m.group('name')!r} "
                                    f"(known: {', '.join(VIEWS)})")
            elif CLOSE in line:
                if open_at is None:
                    problems.append(f"{where}:{i}: {CLOSE} with no block open")
                open_at = None
        if open_at is not None:
            problems.append(f"{where}:{open_at}: measured block never closed ({CLOSE})")
    return problems


def rewrite(results: dict, files: list[Path] | None = None) -> list[str]:
    """Redraw every block whose measurements are in ``results``; return what changed."""
    changed = []
    for path in files if files is not None else DOC_FILES:
        if path in EXCLUDED:
            continue
        text = path.read_text()

        def fill(m: re.Match) -> str:
            view = VIEWS[m.group("name")]
            if not all(n in results for n in view.needs):
                return m.group(0)
            return m.group("open") + view.render(results) + "\n" + m.group("close")

        new = BLOCK.sub(fill, text)
        if new != text:
            path.write_text(new)
            changed.append(str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))
    return changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help=f"comma-separated measurements (default: all of {', '.join(RUNS)})")
    p.add_argument("--check", action="store_true", help="check the markers; run nothing")
    p.add_argument("--render", action="store_true", help="redraw the blocks from the stored results")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "measure-docs")
    args = p.parse_args(argv)

    problems = check()
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if args.check:
        print(f"measure_docs: every measured block names one of {', '.join(VIEWS)}")
        return 0
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if not args.render:
        names = args.only.split(",") if args.only else list(RUNS)
        unknown = [n for n in names if n not in RUNS]
        if unknown:
            p.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(RUNS)})")
        args.runs_dir.mkdir(parents=True, exist_ok=True)
        for name in RUNS:  # in RUNS's order, whatever --only's
            if name not in names:
                continue
            info = machine()
            result = RUNS[name](args.runs_dir)
            info["omp_num_threads"] = result.pop("omp_num_threads", info["omp_num_threads"])
            info["load_end"] = round(os.getloadavg()[0], 2)
            result.update(date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
                          machine=info)
            results[name] = result
            RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
            print(f"measure_docs: {name}: {result['wall_s']} s", flush=True)
    for path in rewrite(results):
        print(f"measure_docs: rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

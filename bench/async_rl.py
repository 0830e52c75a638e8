"""Asynchronous vs synchronous GRPO, and TRL, by time to held-out accuracy, in one run.

Run: python bench/async_rl.py [--target 0.55] [--steps 200] [--eval-every 10]
                              [--only sync,async,async3,trl] [--trl-full]

The embedded GRPO task with its default config and seed; every rlcore process (trainer or
rollout worker) runs one thread (``OMP_NUM_THREADS=1``; several threads a process collapse when
the 2 cores are shared), TRL one process of ``--threads`` threads. The SFT warm start is
trained once (one process, timed) and every side starts from it, its time added to every clock:

- ``sync``: ``rlcore train grpo --nproc 2``: two colocated ranks sample, then train, in turn;
- ``async``: ``--nproc 2 --set rollout.procs=1 --set rollout.max_staleness=1``: one rollout
  worker samples the next batch while one trainer trains on this one;
- ``async3``: the same with ``--nproc 3``: two trainers and one worker (oversubscribes 2 cores);
- ``trl``: TRL's ``GRPOTrainer`` (``bench/grpo_step.py``'s harness) from the warm start's
  weights on the same prompts: group size, new tokens, temperature, lr, betas, clip, token-mean
  loss, no KL and ``policy.minibatches`` optimizer steps per generation batch as rlcore's
  defaults; one process with ``--threads`` threads; it stops once it reaches the target.

Every side evaluates greedy exact-match accuracy on the same held-out prompts every
``--eval-every`` steps; eval time is taken off every clock (the harnesses evaluate
differently). Reported per side: seconds to reach ``--target``, the final accuracy, and the
share of the training time each side waits: the trainers for data (``time/rollout_wait``;
colocated: the time they spend sampling) and rollout for weights (``time/train_wait``;
colocated: the time the sampler sits out the training).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_info, print_json, print_table  # noqa: E402

WARM_START_DIR = "warm_start"  # where an RL run keeps (and reuses) its SFT warm start
MODES = {"sync": (2, []), "async": (2, ["rollout.procs=1", "rollout.max_staleness=1"]),
         "async3": (3, ["rollout.procs=1", "rollout.max_staleness=1"])}


def rlcore_bin() -> str:
    return str(Path(sys.executable).with_name("rlcore"))


def train(run_dir: Path, nproc: int, sets: list[str], log: Path) -> float:
    """``rlcore train grpo`` into ``run_dir``; the wall time it took."""
    cmd = [rlcore_bin(), "train", "grpo", "--nproc", str(nproc), "--run-dir", str(run_dir),
           *[f"--set={s}" for s in sets]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread a process: steady when shared
    start = time.time()
    with open(log, "w") as out:
        subprocess.run(cmd, env=env, check=True, stdout=out, stderr=subprocess.STDOUT)
    return start


def warm_start(args, where: Path) -> tuple[Path, float]:
    """The default SFT warm start, trained once (one process); its directory and seconds."""
    run_dir = where / "warm"
    start = train(run_dir, 1, ["run.max_steps=1", "run.eval_every=0", "run.progress=false",
                               f"run.seed={args.seed}", *args.set], where / "warm.log")
    rows = (run_dir / WARM_START_DIR / "metrics.jsonl").read_text().splitlines()
    return run_dir / WARM_START_DIR, json.loads(rows[-1])["time"] - start


def run_rlcore(mode: str, args, where: Path, warm: Path, warm_s: float) -> dict:
    """Train ``mode`` from a copy of the warm start and read its clock off metrics.jsonl; the
    warm start's seconds are added to it."""
    run_dir = where / mode
    shutil.copytree(warm, run_dir / WARM_START_DIR)
    nproc, extra = MODES[mode]
    sets = [f"run.max_steps={args.steps}", f"run.eval_every={args.eval_every}",
            "run.progress=false", f"run.seed={args.seed}", *extra, *args.set]
    start = train(run_dir, nproc, sets, where / f"{mode}.log") - warm_s
    total = time.time() - start
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals, eval_s = [], 0.0
    for r in rows:
        eval_s += r.get("time/eval", 0.0)
        if "eval/accuracy" in r:
            evals.append((r["time"] - start - eval_s, r["step"], r["eval/accuracy"]))
    steps = [r for r in rows if r.get("step", 0) > 0]
    train_s = steps[-1]["time"] - rows[0]["time"] - (eval_s - rows[0].get("time/eval", 0.0))
    if mode == "sync":
        trainer_wait = sum(r["time/actor_gen"] for r in steps)
        rollout_wait = train_s - trainer_wait
    else:
        trainer_wait = sum(r.get("time/rollout_wait", 0.0) for r in steps)
        rollout_wait = sum(r.get("time/train_wait", 0.0) for r in steps)
    return {"evals": evals, "total_s": total, "train_s": train_s,
            "warm_start_s": warm_s, "trainer_wait": trainer_wait / train_s,
            "rollout_wait": rollout_wait / train_s, "steps": len(steps)}


def run_trl(args, warm_dir: Path, warm_start_s: float, where: Path) -> dict:
    """TRL's GRPOTrainer from ``warm_dir`` with rlcore's default GRPO settings."""
    import torch
    import transformers
    from accelerate.state import AcceleratorState
    from datasets import Dataset
    from grpo_step import trl_config
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.data.embedded import prompt_rows
    from rlcore.runtime.experiment import build_experiment
    from rlcore.sdk import PROMPTS
    from rlcore_plugin_rewards.rules import exact_match

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    _, cfg = resolve_experiment("grpo", None, [f"run.seed={args.seed}", *args.set])
    exp = build_experiment("grpo", cfg)
    held_out = exp.eval_prompts
    eval_ids = [held_out.sequences(PROMPTS, i)[0].tolist() for i in range(len(held_out))]
    answers = held_out.sample_dicts()
    ds = cfg.dataset
    rows = [{"prompt": r["prompt"], "answer": r["answer"]}
            for r in prompt_rows(ds.embedded_size, ds.seed, "train", ds.embedded_max_operand)]
    minibatches = cfg.policy.minibatches
    knobs = argparse.Namespace(prompts=cfg.run.batch_size, group=cfg.gen.n_samples,
                               new_tokens=cfg.gen.max_new_tokens, no_eos=False, seed=args.seed,
                               lr=cfg.train.optimizer.lr)
    total = args.steps * minibatches  # TRL counts optimizer steps

    def reward(completions, answer, **_):
        return exact_match(completions, [{"answer": a} for a in answer])

    start = time.perf_counter()
    AcceleratorState._reset_state(reset_partial_state=True)
    model = AutoModelForCausalLM.from_pretrained(str(warm_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(warm_dir))
    clock = {"eval_s": 0.0, "evals": []}

    def evaluate(step: int) -> None:
        t0 = time.perf_counter()
        acc = greedy_accuracy(model, tokenizer, eval_ids, answers, cfg.eval.max_new_tokens)
        clock["eval_s"] += time.perf_counter() - t0
        elapsed = warm_start_s + time.perf_counter() - start - clock["eval_s"]
        clock["evals"].append((elapsed, step, acc))

    class Eval(TrainerCallback):
        def on_step_end(self, _args, state, control, **__):
            if state.global_step % (args.eval_every * minibatches) == 0:
                evaluate(state.global_step // minibatches)
                if clock["evals"][-1][2] >= args.target and not args.trl_full:
                    control.should_training_stop = True

    trainer = GRPOTrainer(model=model, reward_funcs=reward,
                          args=trl_config(knobs, where / "trl", total, minibatches),
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          callbacks=[Eval()])
    evaluate(0)
    begin, eval_before = time.perf_counter(), clock["eval_s"]
    trainer.train()
    train_s = time.perf_counter() - begin - (clock["eval_s"] - eval_before)
    return {"evals": clock["evals"], "total_s": clock["evals"][-1][0], "train_s": train_s,
            "warm_start_s": warm_start_s, "steps": clock["evals"][-1][1], "trainer_wait": None,
            "rollout_wait": None}


def greedy_accuracy(model, tokenizer, prompts: list[list[int]], answers: list[dict],
                    max_new_tokens: int) -> float:
    """Exact-match accuracy of HF greedy ``generate`` on token-id prompts (left-padded)."""
    import torch

    from rlcore_plugin_rewards.rules import exact_match

    width = max(map(len, prompts))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    model.eval()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=pad)
    model.train()
    texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
    scores = exact_match(texts, answers)
    return sum(scores) / len(scores)


def time_to(evals: list[tuple[float, int, float]], target: float) -> tuple[float | None, int | None]:
    """Seconds and step of the first eval at or above ``target``."""
    for seconds, step, acc in evals:
        if acc >= target:
            return seconds, step
    return None, None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=float, default=0.55, help="held-out accuracy to reach")
    p.add_argument("--steps", type=int, default=200, help="steps per run (run.max_steps)")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--only", default="sync,async,async3,trl",
                   help="comma-separated sides to run")
    p.add_argument("--trl-full", action="store_true",
                   help="train TRL all --steps (default: stop once it reaches --target)")
    p.add_argument("--threads", type=int, default=2, help="TRL's torch threads")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="extra rlcore --set a.b=c (both modes)")
    args = p.parse_args()
    sides = args.only.split(",")
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rlcore-async-bench-") as tmp:
        tmp = Path(tmp)
        warm, warm_s = warm_start(args, tmp)
        print(f"  warm start: {warm_s:.1f} s", file=sys.stderr, flush=True)
        for mode in MODES:
            if mode in sides:
                results[mode] = run_rlcore(mode, args, tmp, warm, warm_s)
                print(f"  {mode}: {results[mode]['total_s']:.1f} s", file=sys.stderr, flush=True)
        if "trl" in sides:
            actor = sorted((warm / "checkpoints").glob("step-*"))[-1] / "actor"
            results["trl"] = run_trl(args, actor, warm_s, tmp)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    results = {k: v for k, v in results.items() if k in sides}
    table, summary = [], {}
    for side, r in results.items():
        seconds, step = time_to(r["evals"], args.target)
        final = r["evals"][-1][2]
        summary[side] = {"time_to_target_s": seconds, "step": step, "final_accuracy": final,
                         **{k: v for k, v in r.items() if k != "evals"},
                         "evals": [[round(s, 1), st, a] for s, st, a in r["evals"]]}
        wait = (lambda v: "-" if v is None else f"{100 * v:.0f}%")  # noqa: E731
        table.append([side, "not reached" if seconds is None else f"{seconds:.1f} s (step {step})",
                      f"{final:.3f} (step {r['evals'][-1][1]})",
                      f"{r['train_s'] / r['steps']:.3f}", wait(r["trainer_wait"]),
                      wait(r["rollout_wait"]), f"{r['warm_start_s']:.1f} s"])
    print(f"embedded GRPO task, time to held-out accuracy {args.target} (eval time excluded, "
          f"warm start included), {args.steps} steps, eval every {args.eval_every}, "
          f"loadavg {' '.join(load_before)} -> {' '.join(load_after)}")
    print_table(["side", f"time to {args.target}", "final accuracy", "s/step", "trainers wait",
                 "rollout waits", "warm start"], table)
    ratios = {}
    for a, b in (("sync", "async"), ("sync", "async3"), ("trl", "sync"), ("trl", "async"),
                 ("trl", "async3")):
        ta, tb = (summary.get(k, {}).get("time_to_target_s") for k in (a, b))
        if ta and tb:
            ratios[f"{a}/{b}"] = round(ta / tb, 2)
            print(f"{b} reaches {args.target} {ta / tb:.2f}x as fast as {a}")
    print_json("async_rl", {"target": args.target, "steps": args.steps,
                            "eval_every": args.eval_every, "env": env_info("cpu"),
                            "loadavg_before": load_before, "loadavg_after": load_after,
                            "ratios": ratios, "results": summary})


if __name__ == "__main__":
    main()

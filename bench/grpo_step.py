"""GRPO step throughput: rlcore's ``grpo`` experiment vs TRL's ``GRPOTrainer``, one process run.

Run: python bench/grpo_step.py [--prompts 8] [--group 8] [--new-tokens 16] [--steps 8] [--repeats 3]

Needs TRL (``pip install -e .[bench]``, which pins trl==1.16.0). Both sides get the same
tiny Llama (built here with transformers, seeded, saved with the embedded tokenizer to a
temp dir and loaded from it by both), the same prompts in the same order (the embedded
addition task, plain text, no chat template, no shuffling), the same group size, new-token
budget, temperature 1, fp32, thread count, exact-match reward, no KL (no reference model),
one optimizer step (AdamW, same lr, betas, eps, grad clip, constant schedule) per
generation batch, token-mean loss, group-std-normalised advantages and clip 0.2.

Each side runs --warmup + --steps steps; the wall time of the last --steps (end of step
--warmup to end of the last step, logging included) gives completions/s = steps x prompts
x group / wall. Sides alternate across --repeats; medians and spread are reported, and
both sides' time split: rlcore's per-MFC times (``time/<mfc>`` in metrics.jsonl), TRL's
from timers wrapped around its generate, reward, input-preparation and training calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_info, median, print_json, print_table  # noqa: E402

TRL_VERSION = "1.16.0"


# ---------------------------------------------------------------------- shared setup


def build_model_dir(where: Path, args) -> tuple[Path, int]:
    """A seeded tiny LlamaForCausalLM and the embedded tokenizer in ``where``; (dir, params)."""
    import transformers

    from rlcore.data.embedded import embedded_tokenizer, save_embedded_tokenizer

    tok = embedded_tokenizer()
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=args.heads,
        num_key_value_heads=args.heads, max_position_embeddings=512, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(args.seed)
    model = transformers.LlamaForCausalLM(cfg).to(torch.float32)
    if args.warm_start:
        warm_start(model, tok, args.warm_start, args.seed)
    model.save_pretrained(str(where))
    save_embedded_tokenizer(where)
    return where, sum(p.numel() for p in model.parameters())


def warm_start(model, tok, steps: int, seed: int, batch: int = 64) -> None:
    """Teach ``model`` the task's answer format with ``steps`` plain-torch SFT steps.

    Framework-neutral (neither rlcore nor TRL trains it): teacher-forced cross-entropy on
    ``<bos> a+b= answer <eos>``, loss on the answer and eos only, AdamW lr 3e-3. The model
    then answers and stops at eos most of the time, so rewards vary within a group and the
    completion lengths are ragged, as in real GRPO runs.
    """
    from rlcore.data.embedded import sft_rows

    rows = sft_rows(steps * batch, seed=seed + 1000)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for i in range(steps):
        ids, labels = [], []
        for r in rows[i * batch:(i + 1) * batch]:
            prompt = tok(r["prompt"], add_special_tokens=True)["input_ids"]
            answer = tok(r["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids.append(prompt + answer)
            labels.append([-100] * len(prompt) + answer)
        width = max(map(len, ids))
        x = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in ids])
        y = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in ids])
        loss = model(input_ids=x, attention_mask=mask, labels=y).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    print(f"  warm start: {steps} SFT steps, last loss {loss.item():.3f}", file=sys.stderr)


def write_prompts(where: Path, n: int, seed: int) -> tuple[Path, list[dict]]:
    """``n`` embedded addition rows ``{"prompt", "answer"}`` as JSONL (rlcore) and a list (TRL)."""
    from rlcore.data.embedded import prompt_rows

    rows = [{"prompt": r["prompt"], "answer": r["answer"]} for r in prompt_rows(n, seed=seed)]
    path = where / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


# ---------------------------------------------------------------------- rlcore


def rlcore_sets(args, model_dir: Path, data_path: Path, total_steps: int) -> list[str]:
    sets = [
        f"actor.path={model_dir}", f"dataset.path={data_path}", "dataset.shuffle=false",
        f"run.batch_size={args.prompts}", f"gen.n_samples={args.group}",
        f"gen.max_new_tokens={args.new_tokens}", "gen.temperature=1.0", "gen.top_k=0",
        "gen.top_p=1.0", f"train.optimizer.lr={args.lr}", "train.optimizer.weight_decay=0.0",
        "train.optimizer.beta1=0.9", "train.optimizer.beta2=0.95", "train.optimizer.eps=1e-8",
        "train.grad_clip=1.0", "train.scheduler.kind=constant", "train.dtype=fp32",
        "train.zero_stage=0", f"run.max_steps={total_steps}", "run.eval_every=0",
        "run.progress=false", "run.save_every=0", f"run.seed={args.seed}", "warm_start.sft_steps=0",
        "kl.coef=0", "policy.minibatches=1", "policy.epochs=1", "adv.estimator=grpo",
        "adv.std_norm=true", "adv.norm=false", "policy.loss_agg=token-mean",
        "policy.eps_clip=0.2", "policy.entropy_coef=0.0",
    ]
    if args.no_eos:
        sets.append(f"gen.min_new_tokens={args.new_tokens}")
    return sets + list(args.set)


_RLCORE_ENV: dict[str, str] = {}  # what rlcore's one-rank process group put in os.environ


@contextlib.contextmanager
def rlcore_environment():
    """rlcore's env vars (RANK, WORLD_SIZE, ...) during its runs only.

    rlcore makes this process a one-rank gloo group and says so in os.environ. The group
    stays (DeepSpeed caches it), but the variables go after each run: accelerate reads
    them, and would otherwise run TRL as MULTI_CPU and wrap its model in DDP, charging it
    an all-reduce and an unused-parameter search per step.
    """
    import os

    before = dict(os.environ)
    os.environ.update(_RLCORE_ENV)
    try:
        yield
    finally:
        _RLCORE_ENV.update({k: v for k, v in os.environ.items() if before.get(k) != v})
        os.environ.clear()
        os.environ.update(before)


def run_rlcore(args, model_dir: Path, data_path: Path, run_dir: Path) -> dict:
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.launch.launcher import launch
    from rlcore.runtime.metrics import MetricsLogger, read_metrics

    total = args.warmup + args.steps
    record, cfg = resolve_experiment(args.experiment, None,
                                     rlcore_sets(args, model_dir, data_path, total),
                                     profile="tiny")  # every key as TRL's; no real-model profile
    # The end of each step: when the loop logs it (wall and process CPU clocks).
    clock: dict[int, tuple[float, float]] = {}
    log = MetricsLogger.log

    def clocked_log(self, step, metrics):
        out = log(self, step, metrics)
        if step > 0:
            clock[step] = (time.perf_counter(), time.process_time())
        return out

    MetricsLogger.log = clocked_log
    try:
        with rlcore_environment():
            launch(record.name, cfg, nproc=1, run_dir=run_dir, resume=False)
    finally:
        MetricsLogger.log = log
    rows = {r["step"]: r for r in read_metrics(run_dir) if r.get("step", 0) > 0}
    if sorted(rows) != list(range(1, total + 1)) or sorted(clock) != sorted(rows):
        raise SystemExit(f"rlcore logged steps {sorted(rows)}, expected 1..{total}")
    timed = [rows[s] for s in range(args.warmup + 1, total + 1)]
    wall = clock[total][0] - clock[args.warmup][0]
    cpu = clock[total][1] - clock[args.warmup][1]
    split: dict[str, float] = {}
    for r in timed:
        for k, v in r.items():
            if k.startswith("time/"):
                split[k[5:]] = split.get(k[5:], 0.0) + v
    gen = split.get("actor_gen", 0.0)
    score = split.get("rew_inf", 0.0) + split.get("ref_inf", 0.0)
    train = split.get("actor_train", 0.0)
    return {
        "wall_s": wall, "cpu_s": cpu,
        "gen_s": gen, "score_s": score, "train_s": train,
        "other_s": wall - gen - score - train,
        "mfc_s": {k: round(v, 4) for k, v in split.items()},
        "mean_completion_len": statistics.fmean(r["response/length_mean"] for r in timed),
        "truncated_frac": statistics.fmean(r.get("response/truncated_frac", float("nan"))
                                           for r in timed),
        "reward_mean": statistics.fmean(r["reward/mean"] for r in timed),
        "threads_after": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------- TRL


def _timed_method(obj, name: str, acc: dict, key: str) -> None:
    """Wrap ``obj.name`` so that its wall time accumulates into ``acc[key]`` (current step)."""
    inner = getattr(obj, name)

    def wrapper(*a, **kw):
        t0 = time.perf_counter()
        try:
            return inner(*a, **kw)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - t0

    setattr(obj, name, wrapper)


def trl_config(args, out_dir: Path, total: int, minibatches: int = 1):
    """TRL's config for rlcore's settings in ``args``; ``minibatches`` optimizer steps (of an
    equal share each) per generation batch, as rlcore's ``policy.minibatches``."""
    from trl import GRPOConfig

    per_step = args.prompts * args.group
    gen_kwargs = {"min_new_tokens": args.new_tokens} if args.no_eos else None
    return GRPOConfig(
        output_dir=str(out_dir), use_cpu=True, bf16=False, fp16=False, seed=args.seed,
        gradient_checkpointing=False, report_to="none", save_strategy="no", logging_steps=1,
        disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        max_steps=total, num_train_epochs=1,
        # One generation batch = `minibatches` optimizer steps over equal shares of it.
        per_device_train_batch_size=per_step // minibatches, gradient_accumulation_steps=1,
        steps_per_generation=minibatches, num_iterations=1, num_generations=args.group,
        shuffle_dataset=False,
        max_completion_length=args.new_tokens, temperature=1.0, top_p=1.0, top_k=0,
        generation_kwargs=gen_kwargs,
        beta=0.0, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        # AdamW as rlcore's default (betas 0.9/0.95, eps 1e-8, no decay), constant lr, clip 1.
        learning_rate=args.lr, optim="adamw_torch", adam_beta1=0.9, adam_beta2=0.95,
        adam_epsilon=1e-8, weight_decay=0.0, lr_scheduler_type="constant", warmup_steps=0,
        max_grad_norm=1.0,
    )


def run_trl(args, model_dir: Path, rows: list[dict], out_dir: Path) -> dict:
    import transformers
    from accelerate.state import AcceleratorState
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    from rlcore_plugin_rewards.rules import exact_match

    transformers.logging.set_verbosity_error()
    total = args.warmup + args.steps

    def exact_match_reward(completions, answer, **_):
        return exact_match(completions, [{"answer": a} for a in answer])

    ends: list[tuple[float, float]] = []  # (wall, process CPU) at each step's end
    per_step: list[dict] = []
    acc: dict = {}

    class StepClock(TrainerCallback):
        def on_step_begin(self, *_, **__):
            acc.clear()

        def on_step_end(self, *_, **__):
            ends.append((time.perf_counter(), time.process_time()))
            per_step.append(dict(acc))

    AcceleratorState._reset_state(reset_partial_state=True)  # a fresh, non-distributed state
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    trainer = GRPOTrainer(
        model=model, reward_funcs=exact_match_reward, args=trl_config(args, out_dir, total),
        train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[StepClock()],
    )
    _timed_method(trainer, "_generate_single_turn", acc, "gen")
    _timed_method(trainer, "_calculate_rewards", acc, "score")
    _timed_method(trainer, "_prepare_inputs", acc, "prepare")
    _timed_method(trainer, "training_step", acc, "training_step")
    trainer.train()
    if len(ends) != total:
        raise SystemExit(f"TRL ran {len(ends)} steps, expected {total}")
    if trainer.accelerator.distributed_type != "NO" or trainer.model_wrapped is not trainer.model:
        raise SystemExit(f"TRL ran as {trainer.accelerator.distributed_type} with a "
                         f"{type(trainer.model_wrapped).__name__}, not one plain process")
    wall = ends[-1][0] - ends[args.warmup - 1][0]
    cpu = ends[-1][1] - ends[args.warmup - 1][1]
    timed = per_step[args.warmup:]
    s = {k: sum(st.get(k, 0.0) for st in timed) for k in ("gen", "score", "prepare", "training_step")}
    logs = [h for h in trainer.state.log_history if "completions/mean_length" in h][args.warmup:]
    return {
        "wall_s": wall, "cpu_s": cpu,
        "gen_s": s["gen"], "score_s": s["score"],
        # loss forward + backward: training_step minus the generation batch it prepares
        "train_s": s["training_step"] - s["prepare"],
        "prep_s": s["prepare"] - s["gen"] - s["score"],
        "other_s": wall - s["training_step"],  # clip, optimizer, logging, data loading
        "mean_completion_len": statistics.fmean(h["completions/mean_length"] for h in logs),
        "truncated_frac": statistics.fmean(h.get("completions/clipped_ratio", float("nan"))
                                           for h in logs),
        "reward_mean": statistics.fmean(h["reward"] for h in logs),
        "threads_after": torch.get_num_threads(),
    }


# ---------------------------------------------------------------------- main


def summarise(runs: list[dict], completions: int) -> dict:
    cps = [completions / r["wall_s"] for r in runs]
    walls = [r["wall_s"] for r in runs]
    mid = runs[sorted(range(len(runs)), key=lambda i: walls[i])[len(runs) // 2]]
    return {
        "completions_per_s": round(median(cps), 2),
        "completions_per_s_min": round(min(cps), 2),
        "completions_per_s_max": round(max(cps), 2),
        "wall_s": round(median(walls), 4),
        "cpu_s": round(median([r["cpu_s"] for r in runs]), 4),
        "median_run": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in mid.items()},
        "runs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                  if k != "mfc_s"} for r in runs],
    }


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--experiment", default="grpo",
                   help="rlcore experiment (default grpo; `ppo` runs the same graph with "
                        "adv.estimator=grpo, no critic, no reference)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (run.batch_size)")
    p.add_argument("--group", type=int, default=8, help="completions per prompt (gen.n_samples)")
    p.add_argument("--new-tokens", type=int, default=16, help="gen.max_new_tokens = max_completion_length")
    p.add_argument("--no-eos", action="store_true",
                   help="force exactly --new-tokens per completion in both (min_new_tokens = max)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps at the start of each run")
    p.add_argument("--repeats", type=int, default=3, help="runs per side, alternating")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--warm-start", type=int, default=0, metavar="STEPS",
                   help="plain-torch SFT steps on the task before both sides load the model "
                        "(0 = random init: every reward is 0 and lengths are uniform)")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=["rlcore", "trl"], default=None, help="run one side only")
    p.add_argument("--set", action="append", default=[], help="extra rlcore --set a.b=c")
    args = p.parse_args()
    if args.warmup < 1:
        raise SystemExit("--warmup must be >= 1 (the timed window starts at the end of a step)")
    torch.set_num_threads(args.threads)

    try:
        import trl
    except ImportError:
        trl = None
        if args.only != "rlcore":
            raise SystemExit("TRL is not installed: pip install -e .[bench] (trl==1.16.0), "
                             "or --only rlcore") from None
    if trl is not None and trl.__version__ != TRL_VERSION:
        print(f"warning: TRL {trl.__version__} installed, this bench was written for "
              f"{TRL_VERSION}", file=sys.stderr)

    completions = args.steps * args.prompts * args.group
    loadavg_before = Path("/proc/loadavg").read_text().split()[:3]
    results: dict[str, list[dict]] = {"rlcore": [], "trl": []}
    with tempfile.TemporaryDirectory(prefix="rlcore-grpo-bench-") as tmp:
        tmp = Path(tmp)
        model_dir, n_params = build_model_dir(tmp / "model", args)
        data_path, rows = write_prompts(tmp, args.prompts * (args.warmup + args.steps), args.seed)
        sides = {"rlcore": lambda r: run_rlcore(args, model_dir, data_path, tmp / f"rlcore-{r}"),
                 "trl": lambda r: run_trl(args, model_dir, rows, tmp / f"trl-{r}")}
        order = [s for s in ("rlcore", "trl") if args.only in (None, s)]
        for r in range(args.repeats):
            for side in order if r % 2 == 0 else order[::-1]:
                torch.set_num_threads(args.threads)
                res = sides[side](r)
                results[side].append(res)
                print(f"  repeat {r} {side:6s} wall {res['wall_s']:.2f}s for {args.steps} steps, "
                      f"{completions / res['wall_s']:.1f} completions/s, "
                      f"mean len {res['mean_completion_len']:.2f}", file=sys.stderr, flush=True)
    loadavg_after = Path("/proc/loadavg").read_text().split()[:3]

    summary = {side: summarise(rs, completions) for side, rs in results.items() if rs}
    ratio = cpu_ratio = best_ratio = None
    if "rlcore" in summary and "trl" in summary:
        rl, hf = summary["rlcore"], summary["trl"]
        ratio = round(rl["completions_per_s"] / hf["completions_per_s"], 3)
        cpu_ratio = round(hf["cpu_s"] / rl["cpu_s"], 3)
        # Other jobs only ever slow a run down: each side's fastest run is its least disturbed.
        best_ratio = round(rl["completions_per_s_max"] / hf["completions_per_s_max"], 3)
    info = env_info("cpu")
    info["trl"] = getattr(trl, "__version__", None)
    print(f"GRPO step, rlcore experiment={args.experiment} vs TRL GRPOTrainer {info['trl']}: "
          f"llama hidden={args.hidden} layers={args.layers} heads={args.heads} ({n_params / 1e6:.2f}M), "
          f"fp32, {args.prompts} prompts x {args.group} completions, <= {args.new_tokens} new tokens"
          f"{' (eos off: exactly that many)' if args.no_eos else ''}, {args.steps} timed steps after "
          f"{args.warmup} warm-up, {args.repeats} repeats, threads={args.threads}, "
          f"loadavg {' '.join(loadavg_before)} -> {' '.join(loadavg_after)}")
    table = []
    for side, s in summary.items():
        m = s["median_run"]
        w = m["wall_s"]
        other = m["other_s"] + m.get("prep_s", 0.0)
        table.append([
            side, s["completions_per_s"], f"{s['completions_per_s_min']}-{s['completions_per_s_max']}",
            f"{w / args.steps:.3f}", f"{s['cpu_s'] / args.steps:.3f}", f"{m['mean_completion_len']:.2f}",
            f"{m['gen_s'] / args.steps:.3f} ({pct(m['gen_s'], w)})",
            f"{m['score_s'] / args.steps:.3f} ({pct(m['score_s'], w)})",
            f"{m['train_s'] / args.steps:.3f} ({pct(m['train_s'], w)})",
            f"{other / args.steps:.3f} ({pct(other, w)})",
        ])
    print_table(["side", "completions/s (median)", "min-max", "s/step", "CPU s/step", "mean completion len",
                 "generation s/step", "scoring s/step", "training s/step", "other s/step"], table)
    if ratio is not None:
        print(f"rlcore/TRL completions/s: {ratio:.2f}x (medians, wall); {cpu_ratio:.2f}x by process "
              f"CPU time; {best_ratio:.2f}x best run vs best run")
    print_json("grpo_step", {
        "experiment": args.experiment, "prompts": args.prompts, "group": args.group,
        "new_tokens": args.new_tokens, "no_eos": args.no_eos, "steps": args.steps,
        "warmup": args.warmup, "repeats": args.repeats, "hidden": args.hidden,
        "layers": args.layers, "heads": args.heads, "lr": args.lr, "seed": args.seed,
        "params": n_params, "env": info, "loadavg_before": loadavg_before,
        "loadavg_after": loadavg_after, "ratio": ratio, "cpu_ratio": cpu_ratio,
        "best_ratio": best_ratio,
        "results": summary,
    })


if __name__ == "__main__":
    main()

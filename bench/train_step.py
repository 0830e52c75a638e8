"""Train-step throughput: packed core transformer vs the HF model on the same padded batch.

Run: python bench/train_step.py [--sizes tiny,100m] [--family llama] [--device cpu] [--dtype float32]
     python bench/train_step.py --family mixtral --sizes moe     (8 experts, top-2)

One step is forward + next-token cross-entropy + backward (no optimizer: its cost is the
same for both). Both models hold the same weights (converted by the family plugin) and see
the same sequences, lengths uniform in [--min-len, --max-len]: the core model packed with
cu_seqlens, HF right-padded with an attention mask and -100 labels. Throughput counts real
(non-pad) tokens for both. Steps alternate core/HF so that load from other processes hits
both alike; the median step time is reported, in wall time (tokens/s) and, steadier on
a shared CPU, as the ratio of process CPU times.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DTYPES,
    SIZES,
    build_pair,
    default_family,
    env_info,
    median,
    n_params,
    print_json,
    print_table,
    timed,
)

DEFAULT_STEPS = {"tiny": 6, "100m": 2}


def make_batches(n_batches: int, batch_size: int, lo: int, hi: int, vocab: int, seed: int):
    """Lists of token-id sequences, lengths uniform in [lo, hi]."""
    gen = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        lens = torch.randint(lo, hi + 1, (batch_size,), generator=gen).tolist()
        batches.append([torch.randint(0, vocab, (n,), generator=gen) for n in lens])
    return batches


def packed_inputs(seqs, device):
    ids = torch.cat(seqs).to(device)
    lens = torch.tensor([len(s) for s in seqs])
    cu = torch.zeros(len(seqs) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(lens, 0)
    targets = torch.roll(ids, -1)
    targets[(cu[1:] - 1).long().to(device)] = -100  # no target after a sequence's last token
    return ids, cu.to(device), targets


def padded_inputs(seqs, device):
    b, n = len(seqs), max(len(s) for s in seqs)
    ids = torch.zeros(b, n, dtype=torch.long)
    mask = torch.zeros(b, n, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    return ids.to(device), mask.to(device), labels.to(device)


def core_step(model, ids, cu, targets):
    logits = model(ids, cu)
    loss = F.cross_entropy(logits.float(), targets, ignore_index=-100)
    loss.backward()
    return loss


def hf_step(model, ids, mask, labels):
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    return loss


def bench_size(args, size: str) -> dict:
    dtype = DTYPES[args.dtype]
    core, hf, cfg, _ = build_pair(args.family, size, args.device, dtype, args.seed, args.hf_attn)
    core.train()
    hf.train()  # HF's dropout is 0 in configs written by config_to_hf; train() for parity of mode
    if args.grad_ckpt:
        core.gradient_checkpointing = True
        hf.gradient_checkpointing_enable()
    steps = args.steps or DEFAULT_STEPS.get(size, 3)
    batches = make_batches(args.warmup + steps, args.batch_size, args.min_len, args.max_len,
                           cfg.vocab_size, args.seed)
    # Same function: the first batch's loss must agree before anything is timed.
    seqs = batches[0]
    with torch.no_grad():
        ids, cu, targets = packed_inputs(seqs, args.device)
        loss_core = F.cross_entropy(core(ids, cu).float(), targets, ignore_index=-100).item()
        pids, pmask, plabels = padded_inputs(seqs, args.device)
        loss_hf = hf(input_ids=pids, attention_mask=pmask, labels=plabels).loss.item()
    loss_diff = abs(loss_core - loss_hf)
    tol = 1e-3 if dtype == torch.float32 else 5e-2
    if loss_diff > tol:
        raise SystemExit(f"{size}: core loss {loss_core:.6f} != HF loss {loss_hf:.6f}; not timing")

    t_core, t_hf, real, padded = [], [], 0, 0  # (wall, cpu) per timed step
    for step, seqs in enumerate(batches):
        ids, cu, targets = packed_inputs(seqs, args.device)
        pids, pmask, plabels = padded_inputs(seqs, args.device)
        runs = [(core, partial(core_step, core, ids, cu, targets), t_core),
                (hf, partial(hf_step, hf, pids, pmask, plabels), t_hf)]
        for model, fn, times in runs if step % 2 == 0 else runs[::-1]:
            model.zero_grad(set_to_none=True)
            dt = timed(fn, args.device)
            if step >= args.warmup:
                times.append(dt)
            print(f"  {size} step {step} {'core' if model is core else 'hf  '} wall {dt[0]:.2f}s "
                  f"cpu {dt[1]:.2f}s"
                  f"{' (warm-up)' if step < args.warmup else ''}", file=sys.stderr, flush=True)
        if step >= args.warmup:
            real += int(ids.numel())
            padded += int(pids.numel())
    n_steps = len(t_core)
    tok_per_step = real / n_steps
    wall = [median([t[0] for t in ts]) for ts in (t_core, t_hf)]
    cpu = [median([t[1] for t in ts]) for ts in (t_core, t_hf)]
    core_tps, hf_tps = tok_per_step / wall[0], tok_per_step / wall[1]
    return {
        "size": size,
        "params_m": round(n_params(core) / 1e6, 1),
        "tokens_per_step": round(tok_per_step),
        "pad_fraction": round(1 - real / padded, 3),
        "core_step_s": round(wall[0], 4),
        "hf_step_s": round(wall[1], 4),
        "core_tokens_per_s": round(core_tps, 1),
        "hf_tokens_per_s": round(hf_tps, 1),
        "ratio": round(core_tps / hf_tps, 3),
        "core_cpu_s": round(cpu[0], 4),
        "hf_cpu_s": round(cpu[1], 4),
        "cpu_ratio": round(cpu[1] / cpu[0], 3),
        "steps": n_steps,
        "loss_diff": float(f"{loss_diff:.2e}"),
        "hf_experts": getattr(hf.config, "_experts_implementation", None),  # MoE: HF's expert kernel
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default=None, help="registered family (default: llama if installed)")
    p.add_argument("--sizes", default="tiny,100m", help=f"comma list of {', '.join(SIZES)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--batch-size", type=int, default=8, help="sequences per step")
    p.add_argument("--min-len", type=int, default=16)
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--steps", type=int, default=None,
                   help=f"timed steps per model (default: {DEFAULT_STEPS}, so a run takes minutes)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--hf-attn", default="sdpa", help="HF attn_implementation (sdpa, eager, ...)")
    p.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing on both")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.family = args.family or default_family()

    results = [bench_size(args, s.strip()) for s in args.sizes.split(",") if s.strip()]
    info = env_info(args.device)
    print(f"train step (fwd+bwd), family={args.family} device={args.device} dtype={args.dtype} "
          f"batch={args.batch_size}x[{args.min_len},{args.max_len}] warmup={args.warmup} "
          f"hf_attn={args.hf_attn} threads={info['threads']}")
    print_table(
        ["size", "params (M)", "real tok/step", "pad %", "core tok/s", "HF tok/s", "core/HF",
         "core/HF by CPU time", "loss diff"],
        [[r["size"], r["params_m"], r["tokens_per_step"], f"{100 * r['pad_fraction']:.0f}",
          r["core_tokens_per_s"], r["hf_tokens_per_s"], f"{r['ratio']:.2f}x",
          f"{r['cpu_ratio']:.2f}x", r["loss_diff"]]
         for r in results],
    )
    print_json("train_step", {"family": args.family, "dtype": args.dtype, "batch_size": args.batch_size,
                              "min_len": args.min_len, "max_len": args.max_len, "warmup": args.warmup,
                              "seed": args.seed, "hf_attn": args.hf_attn, "env": info,
                              "results": results})


if __name__ == "__main__":
    main()

"""Generation throughput: rlcore's ``generate`` vs HF ``generate`` on the same prompts.

Run: python bench/generate.py [--sizes tiny,100m] [--family llama] [--device cpu] [--dtype float32]

Greedy decoding, no EOS, exactly --max-new-tokens per prompt for both (min = max), prompts
of lengths uniform in [--min-prompt, --max-prompt], HF left-padded with an attention mask
and its default KV cache. New tokens/s = prompts x new tokens / wall time of one generate
call (median of --repeats, calls alternating core/HF); the ratio of process CPU times is
reported too, as it is steadier on a shared CPU. The table also reports how many
prompts came out token-identical, as a check that both did the same work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

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


def hf_generate(model, prompts, max_new: int, device: str) -> list[list[int]]:
    b, n = len(prompts), max(len(p) for p in prompts)
    ids = torch.zeros(b, n, dtype=torch.long)
    mask = torch.zeros(b, n, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, n - len(p):] = torch.tensor(p)
        mask[i, n - len(p):] = 1
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                         max_new_tokens=max_new, min_new_tokens=max_new, eos_token_id=None,
                         pad_token_id=0, num_beams=1, use_cache=True)
    return out[:, n:].tolist()


def core_generate(model, prompts, max_new: int) -> list[list[int]]:
    from rlcore.models.generation import GenerationConfig, generate

    gconfig = GenerationConfig(max_new_tokens=max_new, min_new_tokens=max_new, greedy=True,
                               eos_token_ids=[])
    out = generate(model, prompts, gconfig)
    return [t.tolist() for t in out.tokens]


def bench_size(args, size: str) -> dict:
    dtype = DTYPES[args.dtype]
    core, hf, cfg, _ = build_pair(args.family, size, args.device, dtype, args.seed, args.hf_attn)
    gen = torch.Generator().manual_seed(args.seed)
    lens = torch.randint(args.min_prompt, args.max_prompt + 1, (args.n_prompts,), generator=gen)
    prompts = [torch.randint(0, cfg.vocab_size, (int(n),), generator=gen).tolist() for n in lens]
    outs: dict[str, list] = {}

    def run_core():
        outs["core"] = core_generate(core, prompts, args.max_new_tokens)

    def run_hf():
        outs["hf"] = hf_generate(hf, prompts, args.max_new_tokens, args.device)

    t_core, t_hf = [], []
    with torch.inference_mode():
        run_core()  # warm-up
        run_hf()
        for r in range(args.repeats):
            pair = [(run_core, t_core), (run_hf, t_hf)]
            for fn, ts in pair if r % 2 == 0 else pair[::-1]:
                ts.append(timed(fn, args.device))
    new_tokens = args.n_prompts * args.max_new_tokens
    assert all(len(o) == args.max_new_tokens for o in outs["core"] + outs["hf"])
    identical = sum(a == b for a, b in zip(outs["core"], outs["hf"], strict=True))
    wall = [median([t[0] for t in ts]) for ts in (t_core, t_hf)]
    cpu = [median([t[1] for t in ts]) for ts in (t_core, t_hf)]
    core_tps, hf_tps = new_tokens / wall[0], new_tokens / wall[1]
    return {
        "size": size,
        "params_m": round(n_params(core) / 1e6, 1),
        "prompt_tokens": int(lens.sum()),
        "new_tokens": new_tokens,
        "core_s": round(wall[0], 4),
        "hf_s": round(wall[1], 4),
        "core_tokens_per_s": round(core_tps, 1),
        "hf_tokens_per_s": round(hf_tps, 1),
        "ratio": round(core_tps / hf_tps, 3),
        "core_cpu_s": round(cpu[0], 4),
        "hf_cpu_s": round(cpu[1], 4),
        "cpu_ratio": round(cpu[1] / cpu[0], 3),
        "identical_prompts": identical,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default=None, help="registered family (default: llama if installed)")
    p.add_argument("--sizes", default="tiny,100m", help=f"comma list of {', '.join(SIZES)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--n-prompts", type=int, default=8)
    p.add_argument("--min-prompt", type=int, default=16)
    p.add_argument("--max-prompt", type=int, default=128)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--hf-attn", default="sdpa", help="HF attn_implementation (sdpa, eager, ...)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.family = args.family or default_family()

    results = [bench_size(args, s.strip()) for s in args.sizes.split(",") if s.strip()]
    info = env_info(args.device)
    print(f"greedy generate, family={args.family} device={args.device} dtype={args.dtype} "
          f"prompts={args.n_prompts}x[{args.min_prompt},{args.max_prompt}] "
          f"new={args.max_new_tokens} hf_attn={args.hf_attn} threads={info['threads']}")
    print_table(
        ["size", "params (M)", "new tokens", "core tok/s", "HF tok/s", "core/HF",
         "core/HF by CPU time", "identical"],
        [[r["size"], r["params_m"], r["new_tokens"], r["core_tokens_per_s"], r["hf_tokens_per_s"],
          f"{r['ratio']:.2f}x", f"{r['cpu_ratio']:.2f}x", f"{r['identical_prompts']}/{args.n_prompts}"]
         for r in results],
    )
    print_json("generate", {"family": args.family, "dtype": args.dtype, "n_prompts": args.n_prompts,
                            "min_prompt": args.min_prompt, "max_prompt": args.max_prompt,
                            "max_new_tokens": args.max_new_tokens, "seed": args.seed,
                            "hf_attn": args.hf_attn, "env": info, "results": results})


if __name__ == "__main__":
    main()

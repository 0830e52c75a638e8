"""Pick the CPU fallback for packed attention: time each candidate on the same packed batch.

Run: python bench/attention_fallback.py [--threads N] [--backward]
Candidates: the per-sequence SDPA loop and scatter-to-padded SDPA that the model runs
(rlcore.models.attention), and, from bench/attention_candidates.py, one SDPA with a
block-diagonal mask, padded SDPA per bucket of similar lengths, and a long/short hybrid.
All must agree with the loop to 1e-5 before they are timed.
--backward times forward + backward (what a train step pays). The block-diagonal mask is O(T^2)
in memory and compute, so it is skipped above --max-block-tokens.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

from rlcore.models.attention import sdpa_loop, sdpa_padded

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attention_candidates import sdpa_block_diagonal, sdpa_bucketed, sdpa_hybrid  # noqa: E402

CANDIDATES = {
    "loop": sdpa_loop,
    "block_diagonal": sdpa_block_diagonal,
    "padded": sdpa_padded,
    "bucketed": sdpa_bucketed,
    "hybrid": sdpa_hybrid,
}


def median_times(fns: list, repeats: int) -> list[float]:
    """Median seconds of each fn, run round-robin so that machine noise hits all alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [sorted(t)[len(t) // 2] for t in times]


def run(fn, q, k, v, seqlens, scale, window, backward: bool) -> None:
    """One call of a candidate, with a backward pass through q, k, v when asked."""
    if not backward:
        with torch.no_grad():
            fn(q, k, v, seqlens, scale, window)
        return
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    fn(q, k, v, seqlens, scale, window).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backward", action="store_true", help="time forward + backward")
    parser.add_argument("--max-block-tokens", type=int, default=1200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    workloads = [  # (name, n_seqs, min_len, max_len, q_heads, kv_heads, head_dim, window)
        ("tiny 8x[16,128] h4/kv2 d16", 8, 16, 128, 4, 2, 16, None),
        ("tiny 8x[16,512] h4 d32", 8, 16, 512, 4, 4, 32, None),
        ("8x[16,256] h12 d64", 8, 16, 256, 12, 12, 64, None),
        ("8x[16,512] h12 d64", 8, 16, 512, 12, 12, 64, None),
        ("8x[16,512] h12/kv4 d64", 8, 16, 512, 12, 4, 64, None),
        ("8x[16,512] h12 d64 window=128", 8, 16, 512, 12, 12, 64, 128),
        ("32x[16,64] h12 d64", 32, 16, 64, 12, 12, 64, None),
    ]
    print(f"threads={args.threads} torch={torch.__version__} "
          f"{'forward+backward' if args.backward else 'forward'}")
    print(f"| workload | tokens | {' | '.join(CANDIDATES)} | fastest |")
    print(f"|---|---|{'---|' * len(CANDIDATES)}---|")
    for name, n, lo, hi, hq, hkv, d, window in workloads:
        seqlens = torch.randint(lo, hi + 1, (n,), generator=gen).tolist()
        t = sum(seqlens)
        q = torch.randn(t, hq, d, generator=gen)
        k = torch.randn(t, hkv, d, generator=gen)
        v = torch.randn(t, hkv, d, generator=gen)
        ref = sdpa_loop(q, k, v, seqlens, d**-0.5, window)
        names = [c for c in CANDIDATES if c != "block_diagonal" or t <= args.max_block_tokens]
        calls = [functools.partial(run, CANDIDATES[c], q, k, v, seqlens, d**-0.5, window,
                                   args.backward) for c in names]
        for name_ in names:
            err = (CANDIDATES[name_](q, k, v, seqlens, d**-0.5, window) - ref).abs().max().item()
            assert err < 1e-5, f"{name_} differs from the loop by {err}"
        times = dict(zip(names, median_times(calls, args.repeats), strict=True))
        best = min(times, key=times.get)
        cells = " | ".join(f"{times[c] * 1e3:.2f} ms" if c in times else "skipped (O(T^2))"
                           for c in CANDIDATES)
        print(f"| {name} | {t} | {cells} | {best} |")


if __name__ == "__main__":
    main()

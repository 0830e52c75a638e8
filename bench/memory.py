"""Peak memory and tokens/s of one step: rlcore's packed, chunked-head model vs HF's model padded.

Run: python bench/memory.py [--tokens 2048,8192] [--modes sft,dpo,logprob] [--layers 2] [--quick]
     python bench/memory.py --modes sft-train,dpo-train,grpo-train --tokens 2048 [--lora-r 16]
     python bench/memory.py --moe ...   (8 experts, top-2: Qwen3-MoE's layout at that shape)

The model is Qwen2-0.5B-shaped (hidden 896, vocab 151,936, GQA 14/2, SwiGLU 4864, tied
embeddings, qkv bias) with ``--layers`` blocks (24 in the real model; fewer on CPU). Per step:

- ``sft``: forward, mean cross-entropy on the answer tokens (the second half of each
  sequence), backward;
- ``dpo``: forward of chosen/rejected pairs, answer log-prob sums, sigmoid DPO loss against
  fixed reference sums, backward;
- ``logprob``: the RL log-prob pass (reference or old policy): no-grad log-probs of the
  completion tokens (the second half of each sequence).

rlcore runs the algorithms plugin's own code path (``TokenQuery``: chunked head, answer positions
only). HF gets the same sequences right-padded with an attention mask and computes
``log_softmax`` over full logits, as TRL does. No optimizer step (the same for both). Each
(side, mode, tokens) measurement runs in its own subprocess, so peak RSS (CPU) or
``max_memory_allocated`` (CUDA) belongs to that measurement alone; sides alternate over
``--repeats``. Reported: the step's peak above the memory held once the model is built
("step peak"), the whole process peak, and tokens/s (real tokens, median and range).
An HF measurement whose padded full-vocabulary logits (with the copies its step must hold at
once: 3 with a backward, 2 without) would not fit in ``MemAvailable`` less 4 GiB (after
``--wait-mem`` seconds of waiting) is skipped and says so; its row then compares rlcore's
step peak with that logits bound, a lower bound on HF's step peak. Workers volunteer as the
OOM killer's first victim and are killed if ``MemAvailable`` drops under 1.5 GiB, so a shared
machine's other processes are safe.

The ``-train`` modes compare full fine-tuning with LoRA (sides ``full`` and ``lora``, both
rlcore's path) on a training step that includes the optimizer: AdamW over the trainable
parameters as the DeepSpeed backend builds it (``torch_adamw``, fused), then ``zero_grad``:

- ``sft-train``: the ``sft`` step, then the AdamW step;
- ``dpo-train``: the reference's no-grad answer log-probs, then the ``dpo`` step against them;
- ``grpo-train``: the reference's no-grad log-probs of the completion half (the sampled
  responses), then the algorithms plugin's ``ppo`` policy loss (GRPO's) on fixed +1/-1
  advantages with old log-probs = the current ones detached, plus the k3 KL term to the
  reference (coefficient 0.04), token-mean, backward, AdamW step.

With full fine-tuning the reference of dpo and grpo is a second full copy of the weights;
with LoRA (``--lora-r``, alpha 2r, every block projection) it is the same model with its
adapters off (``adapters_disabled``, as rlcore's ``AdaptersOff`` role), and the embedding
and head are frozen. Reported besides the peaks: the trainable parameters, the bytes of
AdamW's ``exp_avg`` + ``exp_avg_sq`` as allocated after the steps, the exact bytes of the
weights held (policy + reference, tied weights once) and the memory held once everything
is built (RSS, so with the interpreter). The step peak here includes gradients and the
optimizer state (allocated at the first step), which the held memory does not.
``--gradient-checkpointing`` recomputes each block in the backward on both sides (rlcore's
``actor.gradient_checkpointing``); off by default.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median, print_json, print_table  # noqa: E402

QWEN2_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, n_q_heads=14,
                 n_kv_heads=2, head_dim=64, max_positions=32768)
QUICK = dict(vocab_size=4096, hidden_size=64, intermediate_size=128, n_q_heads=4,
             n_kv_heads=2, head_dim=16, max_positions=1024)


# --moe: the same shape with every MLP a mixture of 8 experts (top-2) a quarter as wide.
MOE = dict(n_experts=8, n_experts_per_token=2)


def core_config(quick: bool, layers: int, moe: bool = False):
    """The qwen2 family's config at the benchmark's shape (qwen3_moe's with ``moe``)."""
    import dataclasses

    from rlcore.plugins import registry

    family = registry.load("families", "qwen3_moe" if moe else "qwen2")
    shape = QUICK if quick else QWEN2_05B
    experts = {**MOE, "moe_intermediate_size": shape["intermediate_size"] // 4} if moe else {}
    return family, dataclasses.replace(family.tiny_config(), **shape, **experts, n_layers=layers,
                                       tie_embeddings=True)


def sequences(tokens: int, lo: int, hi: int, vocab: int, pairs: bool, seed: int = 0):
    """Token-id sequences, lengths uniform in [lo, hi], until about ``tokens`` real tokens."""
    gen = torch.Generator().manual_seed(seed)
    seqs, total = [], 0
    while total < tokens:
        n = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        group = [torch.randint(0, vocab, (n,), generator=gen) for _ in range(2 if pairs else 1)]
        seqs += group
        total += n * len(group)
    return seqs


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_now(device: str) -> int:
    """Bytes held now, where a step's peak is measured from: CUDA allocated (its peak reset), or RSS."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return rss_bytes()


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# ----------------------------------------------------------------------------- one measurement


def core_step(model, seqs, mode: str, device: str):
    """One step of rlcore's path: packed ids, TokenQuery on the answer (second-half) tokens."""
    from rlcore_plugin_algorithms import losses, packed

    ids = torch.cat(seqs).to(device)
    lens = torch.tensor([len(s) for s in seqs])
    cu = torch.cat([torch.zeros(1, dtype=torch.int32), lens.cumsum(0).int()]).to(device)
    answer = torch.cat([torch.arange(n) >= n // 2 for n in lens.tolist()]).to(device)
    query = packed.next_token_query(ids, packed.target_mask(answer, cu))
    if mode == "logprob":
        with torch.no_grad():
            model(ids, cu, query)
        return
    logp, _ = model(ids, cu, query)
    if mode == "sft":
        loss, _ = losses.sft_loss(logp)
    else:
        sums = packed.per_sequence_sum(packed.scatter_positions(logp, query.positions, ids.numel()), cu)
        ref = sums.detach() - 1.0
        loss = losses.dpo_loss(sums[0::2], sums[1::2], ref[0::2], ref[1::2], 0.1)[0].mean()
    loss.backward()


def hf_step(model, seqs, mode: str, device: str):
    """One step of the HF model on the right-padded batch, log-softmax over full logits."""
    longest = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), longest, dtype=torch.long)
    attn = torch.zeros(len(seqs), longest, dtype=torch.long)
    labels = torch.full((len(seqs), longest), -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)], attn[i, : len(s)] = s, 1
        labels[i, len(s) // 2 : len(s)] = s[len(s) // 2 :]
    ids, attn, labels = ids.to(device), attn.to(device), labels.to(device)
    grad = torch.enable_grad() if mode != "logprob" else torch.no_grad()
    with grad:
        if mode == "sft":  # HF's own causal-LM loss (upcast logits, cross-entropy)
            model(input_ids=ids, attention_mask=attn, labels=labels).loss.backward()
            return
        logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
        target = labels[:, 1:]
        keep = target != -100
        logp = torch.log_softmax(logits, -1).gather(-1, target.clamp(min=0)[..., None]).squeeze(-1)
        sums = (logp * keep).sum(-1)
        if mode == "dpo":
            from rlcore_plugin_algorithms import losses

            ref = sums.detach() - 1.0
            losses.dpo_loss(sums[0::2], sums[1::2], ref[0::2], ref[1::2], 0.1)[0].mean().backward()


def measure(args) -> dict:
    """Build one side's model, run warm-up + timed steps, report memory and tokens/s."""
    device = args.device
    family, cfg = core_config(args.quick, args.layers, args.moe)
    seqs = sequences(args.tokens, args.min_len, args.max_len, cfg.vocab_size, args.mode == "dpo")
    real = sum(len(s) for s in seqs)
    padded = len(seqs) * max(len(s) for s in seqs)
    torch.manual_seed(0)
    if args.side == "rlcore":
        from rlcore.models.transformer import Transformer

        model = Transformer(cfg).to(device)
        step = core_step
    else:
        import transformers

        hf_cfg = transformers.AutoConfig.for_model(**family.config_to_hf(cfg))
        model = transformers.AutoModelForCausalLM.from_config(hf_cfg, attn_implementation="sdpa")
        model.to(device)
        step = hf_step
    model.train()
    base = memory_now(device)
    times = []
    for i in range(args.warmup + args.steps):
        model.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(model, seqs, args.mode, device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"side": args.side, "mode": args.mode, "tokens": real, "padded_tokens": padded,
            "sequences": len(seqs), "base_bytes": base, "peak_bytes": peak,
            "step_peak_bytes": peak - base, "tok_s": real / median(times)}


# ----------------------------------------------------------------------------- train steps (full vs LoRA)

TRAIN_MODES = ("sft-train", "dpo-train", "grpo-train")
TRAIN_SIDES = ("full", "lora")
GRPO_KL_COEF = 0.04  # the GRPO paper's beta: a KL loss term, so the step needs the reference pass


def weight_bytes(*modules) -> int:
    """Bytes of the distinct storages behind ``modules``' parameters and buffers (tied or
    shared weights counted once)."""
    seen = {}
    for m in modules:
        for t in [*m.parameters(), *m.buffers()]:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def adam_state_bytes(opt) -> int:
    """Bytes of AdamW's ``exp_avg`` and ``exp_avg_sq`` as allocated in ``opt.state``."""
    return sum(v.numel() * v.element_size() for s in opt.state.values() for k, v in s.items()
               if k in ("exp_avg", "exp_avg_sq"))


def train_step(model, reference, seqs, mode: str, device: str, opt) -> None:
    """One training step on rlcore's path: the reference pass (dpo, grpo), forward, loss,
    backward, AdamW step. ``reference(ids, cu, query)`` gives no-grad reference log-probs."""
    from rlcore_plugin_algorithms import losses, packed, rl

    ids = torch.cat(seqs).to(device)
    lens = torch.tensor([len(s) for s in seqs])
    cu = torch.cat([torch.zeros(1, dtype=torch.int32), lens.cumsum(0).int()]).to(device)
    answer = torch.cat([torch.arange(n) >= n // 2 for n in lens.tolist()]).to(device)
    which = packed.target_mask(answer, cu)
    # grpo scores the sampled responses as PolicyInterface does: log-probs and entropy
    query = packed.next_token_query(ids, which, entropy=mode == "grpo-train")
    ref_logp = reference(ids, cu, query) if mode != "sft-train" else None
    logp, _ = model(ids, cu, query)
    if mode == "sft-train":
        loss, _ = losses.sft_loss(logp)
    elif mode == "dpo-train":
        def sums(x):
            return packed.per_sequence_sum(packed.scatter_positions(x, query.positions, ids.numel()), cu)

        s, r = sums(logp), sums(ref_logp)
        loss = losses.dpo_loss(s[0::2], s[1::2], r[0::2], r[1::2], 0.1)[0].mean()
    else:  # grpo: the policy loss on fixed advantages, old log-probs = the current ones detached
        from rlcore.plugins import registry
        from rlcore.sdk import PolicyLossInputs
        from rlcore_plugin_algorithms.rl_config import PolicyOptions
        from rlcore_plugin_algorithms.sampling import action_counts

        policy = PolicyOptions()
        cu_act = action_counts(which, cu)
        sign = torch.tensor([1.0, -1.0], device=device).repeat(len(seqs))[: len(seqs)]
        adv = torch.repeat_interleave(sign, (cu_act[1:] - cu_act[:-1]))
        old = logp.detach()
        out = registry.load("policy_losses", policy.loss)(
            PolicyLossInputs(logp, old, logp.float() - old.float(), adv, cu_act, policy))
        per_token = out["loss"] + GRPO_KL_COEF * rl.kl_penalty(logp, ref_logp, "k3")
        loss = rl.aggregate(per_token, cu_act, policy.loss_agg)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def measure_train(args) -> dict:
    """Full fine-tuning or LoRA: the policy (+ a reference copy for full dpo/grpo, or the same
    model with adapters off for LoRA), AdamW over the trainable parameters, warm-up + timed
    steps; memory, optimizer state and tokens/s."""
    import copy

    import peft  # noqa: F401  (both sides import it: the interpreter's share is the same)

    from rlcore.models.lora import adapters_disabled, add_adapters
    from rlcore.models.transformer import Transformer
    from rlcore.runtime.backends import _param_groups, torch_adamw
    from rlcore.runtime.options import LoraOptions, OptimizerOptions

    device = args.device
    _, cfg = core_config(args.quick, args.layers, args.moe)
    mode = args.mode
    seqs = sequences(args.tokens, args.min_len, args.max_len, cfg.vocab_size, mode == "dpo-train")
    torch.manual_seed(0)
    model = Transformer(cfg).to(device)
    model.gradient_checkpointing = args.gradient_checkpointing  # actor.gradient_checkpointing
    held = [model]
    if args.side == "lora":
        add_adapters(model, LoraOptions(r=args.lora_r, alpha=2.0 * args.lora_r), "actor.lora")

        def reference(ids, cu, query):  # rlcore's AdaptersOff: the same module, adapters off
            with adapters_disabled(model), torch.no_grad():
                return model(ids, cu, query)[0]
    else:
        ref = None
        if mode != "sft-train":  # a frozen reference: a second full copy of the weights
            ref = copy.deepcopy(model).requires_grad_(False).eval()
            held.append(ref)

        def reference(ids, cu, query):
            with torch.no_grad():
                return ref(ids, cu, query)[0]
    o = OptimizerOptions()
    opt = torch_adamw(_param_groups(model, o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2),
                      eps=o.eps, weight_decay=o.weight_decay)
    trainable = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()
                    if p.requires_grad)
    model.train()
    base = memory_now(device)
    times = []
    for i in range(args.warmup + args.steps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(model, reference, seqs, mode, device, opt)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    real = sum(len(s) for s in seqs)
    return {"side": args.side, "mode": mode, "tokens": real, "sequences": len(seqs),
            "trainable": trainable, "optimizer_state_bytes": adam_state_bytes(opt),
            "weights_bytes": weight_bytes(*held), "base_bytes": base, "peak_bytes": peak,
            "step_peak_bytes": peak - base, "tok_s": real / median(times)}


# Full-vocabulary fp32 [B, L, V] copies HF's step must hold at once, at least: logits and
# log-softmax (+ the logits' grad with a backward). Measured: 3.0 (logprob, 8k), 3.2 (sft, 2k).
HF_LOGIT_COPIES = {"sft": 3, "dpo": 3, "logprob": 2}
MARGIN = 4 * 2**30  # left to the machine's other processes while HF runs


def hf_need(args, mode: str, tokens: int, vocab: int) -> int:
    """Bytes of HF's padded full-vocabulary fp32 logits (and copies) for one step: a lower bound."""
    seqs = sequences(tokens, args.min_len, args.max_len, vocab, mode == "dpo")
    return HF_LOGIT_COPIES[mode] * 4 * len(seqs) * max(len(s) for s in seqs) * vocab


def hf_fits(args, mode: str, tokens: int, vocab: int) -> tuple[bool, str]:
    """Whether HF's logits fit in ``MemAvailable`` less a margin; waits up to ``--wait-mem`` s for it."""
    if args.device.startswith("cuda") or args.quick:
        return True, ""
    need = hf_need(args, mode, tokens, vocab)
    if need + MARGIN > args.mem_total:
        return False, f"needs >= {need / 2**30:.0f} GiB of logits; the machine has {args.mem_total / 2**30:.0f} GiB"
    deadline = time.monotonic() + args.wait_mem
    while (avail := mem_available()) < need + MARGIN and time.monotonic() < deadline:
        time.sleep(30)
    if avail < need + MARGIN:
        return False, f"needs >= {need / 2**30:.0f} GiB of logits, {avail / 2**30:.0f} GiB available"
    return True, ""


# ----------------------------------------------------------------------------- driver


def run_worker(args, side: str, mode: str, tokens: int) -> dict:
    """One measurement in its own subprocess; killed first if the machine runs short of memory."""
    cmd = [sys.executable, __file__, "--worker", side, "--mode", mode, "--tokens", str(tokens),
           "--layers", str(args.layers), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads), "--device", args.device,
           "--min-len", str(args.min_len), "--max-len", str(args.max_len),
           "--lora-r", str(args.lora_r)]
    if args.quick:
        cmd.append("--quick")
    if args.gradient_checkpointing:
        cmd.append("--gradient-checkpointing")
    if args.moe:
        cmd.append("--moe")
    load = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    guard = threading.Thread(target=_memory_guard, args=(proc,), daemon=True)
    guard.start()
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"worker {side} {mode} {tokens} failed (rc {proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["loadavg"] = [load, os.getloadavg()[0]]
    return result


def _memory_guard(proc: subprocess.Popen, floor: int = 3 * 2**29) -> None:
    """Kill ``proc`` if ``MemAvailable`` falls under 1.5 GiB, before the kernel picks a victim."""
    while proc.poll() is None:
        if mem_available() < floor:
            proc.kill()
            print(f"memory guard: killed worker {proc.pid} (MemAvailable < 1.5 GiB)", file=sys.stderr)
            return
        time.sleep(0.2)


def gib(b: float) -> str:
    return f"{b / 2**30:.2f}"


def train_row(args, mode: str, tokens: int, repeats: int) -> dict:
    """Full fine-tuning and LoRA on one train mode, sides alternating over the repeats."""
    runs = {side: [] for side in TRAIN_SIDES}
    for _ in range(repeats):
        for side in TRAIN_SIDES:
            runs[side].append(run_worker(args, side, mode, tokens))
    row = {"mode": mode, "tokens": runs["full"][0]["tokens"], "lora_r": args.lora_r,
           "gradient_checkpointing": args.gradient_checkpointing,
           "loadavg": [round(x, 1) for rs in runs.values() for r in rs for x in r["loadavg"]]}
    for side, rs in runs.items():
        row.update({f"{side}_trainable": rs[0]["trainable"],
                    f"{side}_optimizer_state": rs[0]["optimizer_state_bytes"],
                    f"{side}_weights": rs[0]["weights_bytes"],
                    f"{side}_held": max(r["base_bytes"] for r in rs),
                    f"{side}_step_peak": max(r["step_peak_bytes"] for r in rs),
                    f"{side}_peak": max(r["peak_bytes"] for r in rs),
                    f"{side}_tok_s": [r["tok_s"] for r in rs]})
    print_json("memory_train", row)
    return row


def print_train_table(rows: list[dict], unit: str) -> None:
    """One line per (mode, side); the LoRA line carries the LoRA / full ratios."""
    table = []
    for r in rows:
        for side in TRAIN_SIDES:
            ts = r[f"{side}_tok_s"]
            cells = [r["mode"], r["tokens"], side if side == "full" else f"lora r={r['lora_r']}",
                     f"{r[f'{side}_trainable'] / 1e6:.2f}M",
                     f"{r[f'{side}_optimizer_state'] / 2**20:.1f}",
                     gib(r[f"{side}_weights"]), gib(r[f"{side}_held"]),
                     gib(r[f"{side}_step_peak"]), gib(r[f"{side}_peak"]),
                     f"{median(ts):.0f} ({min(ts):.0f}-{max(ts):.0f})"]
            if side == "full":
                cells.append("")
            else:
                f = {k: r[f"full_{k}"] for k in ("optimizer_state", "step_peak", "peak", "held")}
                cells.append(f"**{r['lora_optimizer_state'] / f['optimizer_state']:.3f}×** / "
                             f"**{r['lora_step_peak'] / f['step_peak']:.2f}×** / "
                             f"{r['lora_held'] / f['held']:.2f}× / {r['lora_peak'] / f['peak']:.2f}× / "
                             f"{median(ts) / median(r['full_tok_s']):.2f}×")
            table.append(cells)
    print_table(["mode", "real tokens", "side", "trainable params", "AdamW state MiB",
                 "weights held (policy + reference) GiB", f"held after build {unit}",
                 "step peak", "process peak", "tok/s",
                 "lora/full: AdamW state / step peak / held / process peak / tok/s"], table)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny config, 1 step: a smoke run in seconds")
    p.add_argument("--tokens", default=None, help="tokens per step, comma-separated (2048,8192)")
    p.add_argument("--modes", default="sft,dpo,logprob")
    p.add_argument("--layers", type=int, default=None, help="blocks (default 2 on CPU, 24 on CUDA)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-len", type=int, default=None)
    p.add_argument("--max-len", type=int, default=None)
    p.add_argument("--wait-mem", type=float, default=0,
                   help="seconds to wait for MemAvailable to fit HF's logits before skipping it")
    p.add_argument("--lora-r", type=int, default=16,
                   help="LoRA rank of the lora side of the -train modes (all block projections)")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="-train modes: recompute each block in the backward (both sides)")
    p.add_argument("--moe", action="store_true",
                   help="every MLP a mixture of 8 experts, top-2, each a quarter as wide "
                        "(qwen3_moe; the LoRA side adapts the stacked experts too)")
    p.add_argument("--worker", choices=["rlcore", "hf", *TRAIN_SIDES], help=argparse.SUPPRESS)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.layers = args.layers or (1 if args.quick else 24 if cuda else 2)
    args.steps = args.steps or (1 if args.quick else 3)
    args.min_len = args.min_len or (16 if args.quick else 128)
    args.max_len = args.max_len or (96 if args.quick else 1024)
    if args.worker:
        args.side, args.tokens = args.worker, int(args.tokens)
        torch.set_num_threads(args.threads)
        with open("/proc/self/oom_score_adj", "w") as f:  # if memory runs out, this process goes first
            f.write("1000")
        print(json.dumps(measure_train(args) if args.mode in TRAIN_MODES else measure(args)))
        return
    tokens = [int(t) for t in (args.tokens or ("256" if args.quick else "2048,8192")).split(",")]
    repeats = args.repeats or (1 if args.quick else 2)
    vocab = (QUICK if args.quick else QWEN2_05B)["vocab_size"]
    args.mem_total = _mem_total()
    from importlib.metadata import version  # not transformers itself: the driver stays light

    env = {"torch": torch.__version__, "transformers": version("transformers"),
           "threads": args.threads, "device": args.device, "cpus": os.cpu_count()}
    print(json.dumps({"env": env, "layers": args.layers, "quick": args.quick, "moe": args.moe,
                      "loadavg": os.getloadavg()}))
    rows, train_rows = [], []
    for mode in args.modes.split(","):
        if mode in TRAIN_MODES:
            for n in tokens:
                train_rows.append(train_row(args, mode, n, repeats))
            continue
        if mode not in HF_LOGIT_COPIES:
            raise SystemExit(f"unknown mode {mode!r}: choose from {', '.join([*HF_LOGIT_COPIES, *TRAIN_MODES])}")
        for n in tokens:
            runs = {"rlcore": [], "hf": []}
            why = ""
            for _ in range(repeats):
                for side in ("rlcore", "hf"):
                    if side == "hf":
                        fits, why = hf_fits(args, mode, n, vocab)
                        if not fits:
                            continue
                    runs[side].append(run_worker(args, side, mode, n))
            core = runs["rlcore"]
            row = {"mode": mode, "tokens": core[0]["tokens"],
                   "padding": 1 - core[0]["tokens"] / core[0]["padded_tokens"],
                   "core_step_peak": max(r["step_peak_bytes"] for r in core),
                   "core_peak": max(r["peak_bytes"] for r in core),
                   "core_tok_s": [r["tok_s"] for r in core],
                   "loadavg": [round(x, 1) for r in runs["rlcore"] + runs["hf"] for x in r["loadavg"]],
                   "hf_logits_bound": hf_need(args, mode, n, vocab)}
            if runs["hf"]:
                hf = runs["hf"]
                row.update(hf_step_peak=max(r["step_peak_bytes"] for r in hf),
                           hf_peak=max(r["peak_bytes"] for r in hf), hf_tok_s=[r["tok_s"] for r in hf])
            else:
                row["hf_skipped"] = why
            rows.append(row)
            print_json("memory", row)
    table = []
    for r in rows:
        ct = r["core_tok_s"]
        core_cells = [gib(r["core_step_peak"]), gib(r["core_peak"]),
                      f"{median(ct):.0f} ({min(ct):.0f}-{max(ct):.0f})"]
        if "hf_skipped" in r:
            table.append([r["mode"], r["tokens"], f"{r['padding']:.0%}", *core_cells,
                          f"skipped: {r['hf_skipped']}", "", "",
                          f"≤ {r['core_step_peak'] / r['hf_logits_bound']:.2f}× (vs logits bound)", ""])
            continue
        ht = r["hf_tok_s"]
        table.append([r["mode"], r["tokens"], f"{r['padding']:.0%}", *core_cells,
                      gib(r["hf_step_peak"]), gib(r["hf_peak"]),
                      f"{median(ht):.0f} ({min(ht):.0f}-{max(ht):.0f})",
                      f"**{r['core_step_peak'] / r['hf_step_peak']:.2f}×** / {r['core_peak'] / r['hf_peak']:.2f}×",
                      f"**{median(ct) / median(ht):.2f}×**"])
    unit = "GiB (CUDA allocated)" if cuda else "GiB (RSS)"
    if train_rows:
        print_train_table(train_rows, unit)
    if not rows:
        print(json.dumps({"loadavg_end": os.getloadavg()}))
        return
    print_table(["mode", "real tokens", "HF padding", f"rlcore step peak {unit}", "rlcore process peak",
                 "rlcore tok/s", "HF step peak", "HF process peak", "HF tok/s",
                 "peak rlcore/HF (step / process)", "tok/s rlcore/HF"], table)
    print(json.dumps({"loadavg_end": os.getloadavg()}))


if __name__ == "__main__":
    main()

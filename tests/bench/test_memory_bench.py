"""Smoke run of bench/memory.py --quick: every mode, both sides, a table out (not timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "memory.py"


def test_memory_bench_quick_runs_every_mode_on_both_sides():
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--threads", "1"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line[5:]) for line in out.stdout.splitlines() if line.startswith("JSON ")]
    assert [r["mode"] for r in rows] == ["sft", "dpo", "logprob"]
    for r in rows:
        assert r["tokens"] >= 256 and 0 < r["padding"] < 1
        assert r["core_step_peak"] >= 0 and r["hf_step_peak"] >= 0 and r["hf_peak"] > 0
        assert min(r["core_tok_s"]) > 0 and min(r["hf_tok_s"]) > 0
    assert "| sft | " in out.stdout and "tok/s rlcore/HF" in out.stdout


def test_memory_bench_quick_train_modes_compare_full_and_lora():
    """sft-train and grpo-train (a subprocess per side and mode: kept to two modes for CI)."""
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--threads", "1",
                          "--modes", "sft-train,grpo-train", "--repeats", "1"],
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line[5:]) for line in out.stdout.splitlines() if line.startswith("JSON ")]
    assert [r["mode"] for r in rows] == ["sft-train", "grpo-train"]
    # the quick shape: hidden 64, q 4x16, kv 2x16, SwiGLU 128, 1 block; r=16 on all 7 projections
    lora_params = 16 * ((64 + 64) * 2 + (64 + 32) * 2 + (64 + 128) * 3)
    for r in rows:
        assert r["lora_trainable"] == lora_params
        # AdamW's exp_avg + exp_avg_sq as allocated: 2 fp32 values per trainable parameter
        for side in ("full", "lora"):
            assert r[f"{side}_optimizer_state"] == 8 * r[f"{side}_trainable"]
            assert r[f"{side}_step_peak"] >= 0 and min(r[f"{side}_tok_s"]) > 0
        assert r["lora_optimizer_state"] < 0.5 * r["full_optimizer_state"]
    sft, grpo = rows
    # full fine-tuning holds a reference copy for grpo; LoRA holds one model throughout
    assert grpo["full_weights"] == 2 * sft["full_weights"]
    assert grpo["lora_weights"] == sft["lora_weights"] < grpo["full_weights"]
    assert "| grpo-train | " in out.stdout and "lora/full" in out.stdout

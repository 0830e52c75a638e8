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

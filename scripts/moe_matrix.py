"""Train tiny MoE checkpoints (written by transformers) with every experiment through the CLI.

    python scripts/moe_matrix.py [--steps 2] [--out /tmp/moe-matrix]

Per family (mixtral, qwen3_moe) and experiment (sft, dpo, ppo, grpo): ZeRO 0-3 (2 and 3 on
two ranks), and LoRA on the attention and the stacked experts at ZeRO 0 and at ZeRO 3 on two
ranks; ppo and grpo with actor.moe.router_replay. Prints a markdown table (the last step's loss or
reward, moe/aux_loss, moe/router_agreement, seconds); a failed run shows its last error line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FAMILIES = ("mixtral", "qwen3_moe")
EXPERIMENTS = ("sft", "dpo", "ppo", "grpo")
COMMON = ["run.eval_every=0", "run.progress=false", "run.batch_size=4", "train.dtype=fp32"]
RL = ["gen.max_new_tokens=12", "gen.n_samples=4", "ref.dtype=fp32", "kl.coef=0.05"]


def model_dir(family: str, out: Path) -> Path:
    from rlcore.sdk import registry
    from rlcore.testing.families import hf_model_dir

    path = out / "models" / family
    if not (path / "config.json").exists():
        hf_model_dir(registry.load("families", family), path)
    return path


def run(name: str, sets: list[str], where: Path, nproc: int) -> tuple[dict, float, str]:
    """``rlcore train NAME --profile tiny --nproc N --set ...``: the last metrics row, seconds,
    error."""
    rlcore = str(Path(sys.executable).parent / "rlcore")
    start = time.perf_counter()
    done = subprocess.run([rlcore, "train", name, "--profile", "tiny", "--nproc", str(nproc),
                           "--run-dir", str(where), *[f"--set={s}" for s in sets]],
                          capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - start
    if done.returncode:
        return {}, seconds, (done.stderr.strip().splitlines() or ["?"])[-1][:120]
    rows = (where / "metrics.jsonl").read_text().splitlines()
    return json.loads(rows[-1]), seconds, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/moe-matrix"))
    args = parser.parse_args()
    print("| family | experiment | variant | ranks | loss / reward | moe/aux_loss | "
          "moe/router_agreement | s |")
    print("|---|---|---|---|---|---|---|---|")
    for family in FAMILIES:
        path = model_dir(family, args.out)
        for name in EXPERIMENTS:
            lora = ["actor.lora.r=4", "critic.lora.r=4"] if name == "ppo" else ["actor.lora.r=4"]
            variants = [(f"ZeRO-{z}", [f"train.zero_stage={z}"], 1 if z < 2 else 2)
                        for z in range(4)]
            variants += [("LoRA r=4", lora, 1), ("LoRA r=4 ZeRO-3", [*lora, "train.zero_stage=3"], 2)]
            for label, extra, nproc in variants:
                rl = [*RL, "actor.moe.router_replay=true"] if name in ("ppo", "grpo") else []
                sets = [f"actor.path={path}", f"run.max_steps={args.steps}", *COMMON, *rl, *extra]
                where = args.out / family / name / label.replace(" ", "_").replace("=", "")
                last, seconds, error = run(name, sets, where, nproc)
                value = next((last[k] for k in ("reward/mean", "actor_train/loss", "loss")
                              if k in last), None)
                aux = next((v for k, v in last.items() if k.endswith("moe/aux_loss")), None)
                agree = last.get("actor_train/moe/router_agreement")
                cells = [error or ("-" if value is None else f"{value:.4g}"),
                         "-" if aux is None else f"{aux:.4g}", "-" if agree is None else f"{agree:.4g}"]
                print(f"| {family} | {name} | {label} | {nproc} | {' | '.join(cells)} | "
                      f"{seconds:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()

"""Per-step metrics of short default runs, to show a refactoring changes no number.

``python metrics_snapshot.py OUT.json [CASE ...]`` writes ``{case: [per-step metrics]}``;
``tests/data/metrics_before.json`` was written by it at commit 2128480, before the RL spine
was reshaped, and ``test_identical_metrics.py`` compares today's runs with it. Wall-clock
metrics (``time/``, ``perf/``) are left out.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

SHORT = ["run.progress=false", "run.batch_size=8"]
RL = [*SHORT, "run.max_steps=3", "run.eval_every=3", "eval.size=16", "warm_start.sft_steps=10"]
SUPERVISED = [*SHORT, "run.max_steps=4", "run.eval_every=2", "eval.size=16"]

CASES: dict[str, tuple[str, list[str]]] = {
    "sft": ("sft", SUPERVISED),
    "rm": ("rm", SUPERVISED),
    "dpo": ("dpo", SUPERVISED),
    "ppo": ("ppo", RL),
    "ppo_adaptive_kl": ("ppo", [*RL, "ppo.kl_controller=adaptive", "ppo.kl_horizon=50",
                                "ppo.kl_target=0.01"]),
    "grpo": ("grpo", RL),
    "grpo_dynamic_sampling": ("grpo", [*RL, "grpo.dynamic_sampling=true", "grpo.kl_ctl=0.05",
                                       "reward.functions=[format_penalty]",
                                       "eval.metric=exact_match"]),  # eval's metric then
    "rloo": ("grpo", [*RL, "grpo.adv_estimator=rloo"]),
    "remax": ("remax", RL),
}
WALL_CLOCK = ("time", "perf/")


def run_case(case: str, run_dir: Path) -> list[dict[str, float]]:
    """Train ``case`` into ``run_dir`` (one process) and return its per-step metrics."""
    from rlcore.cli.train_cmd import resolve_experiment
    from rlcore.launch.launcher import launch

    name, sets = CASES[case]
    record, cfg = resolve_experiment(name, None, sets)
    launch(record.name, cfg, nproc=1, run_dir=run_dir, resume=False)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(WALL_CLOCK)} for r in rows
            if "step" in r]


def main(out: str, cases: list[str]) -> None:
    result = {}
    for case in cases or list(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            result[case] = run_case(case, Path(tmp) / case)
        print(case, len(result[case]), "rows", flush=True)
    Path(out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

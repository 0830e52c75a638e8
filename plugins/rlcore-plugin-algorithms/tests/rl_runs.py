"""Short RL runs for the tests: the default model and warm start, fewer prompts per step."""

from __future__ import annotations

import shutil

from test_experiments import read_metrics

from rlcore.cli.train_cmd import resolve_experiment
from rlcore.launch.launcher import launch
from rlcore_plugin_algorithms.rl_experiments import WARM_START_DIR

SHORT = ["run.progress=false", "run.eval_every=0", "run.batch_size=16"]


def build_warm_start(where):
    """The default SFT warm start (the same for ppo, grpo and remax), trained into ``where``."""
    from rlcore.runtime.experiment import build_experiment

    _, cfg = resolve_experiment("ppo", None, SHORT)
    build_experiment("ppo", cfg).prepare(where)
    return where / WARM_START_DIR


def train_rl(name, run_dir, warm, *sets, nproc=1, resume=False):
    """Train ``name`` from a copy of the ``warm`` start (None: as configured); steps >= 1."""
    record, cfg = resolve_experiment(name, None, [*SHORT, *sets])
    if warm is not None and not (run_dir / WARM_START_DIR).exists():
        shutil.copytree(warm, run_dir / WARM_START_DIR)
    launch(record.name, cfg, nproc=nproc, run_dir=run_dir, resume=resume)
    return [r for r in read_metrics(run_dir) if r["step"] > 0]

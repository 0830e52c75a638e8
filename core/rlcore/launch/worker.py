"""Per-rank entry point that the launchers start: ``python -m rlcore.launch.worker``.

Each rank reads the experiment name and the resolved config file, then calls
:func:`rlcore.runtime.loop.run`. ``record`` writes an uncaught exception to
torchrun's per-rank error file, which the launcher reports with the rank number.
A rank stopped by a signal exits with 128 + its number once it has saved; it gets
SIGTERM if its launcher dies.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from torch.distributed.elastic.multiprocessing.errors import record


def load_config(experiment: str, config_file: str | None):
    """The experiment's typed config, resolved from ``config_file`` over its defaults."""
    from rlcore.config import experiment_config

    return experiment_config(experiment, config_file=config_file)[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rlcore.launch.worker")
    p.add_argument("--experiment", required=True, help="registered name or module:Class")
    p.add_argument("--config", default=None, help="resolved config YAML")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--resume", default="auto", help="auto | none | PATH of a checkpoint")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None,
                   help=argparse.SUPPRESS)  # passed by DeepSpeed's launcher; env has it too
    return p.parse_args(argv)


@record
def main(argv: list[str] | None = None) -> int:
    from rlcore.launch.torchrun import set_parent_death_signal
    from rlcore.runtime.stopping import RunInterrupted

    args = parse_args(argv)
    set_parent_death_signal()
    # DeepSpeed calls torch's deprecated collective names on every step; keep the logs readable.
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch.distributed")
    from rlcore.runtime.loop import run

    config = load_config(args.experiment, args.config)
    resume = {"auto": True, "none": False}.get(args.resume, args.resume)
    import torch.distributed as dist

    try:
        run(args.experiment, config, args.run_dir, resume=resume)
        if dist.is_initialized():  # no rank tears the group down while a peer still talks on it
            dist.barrier()
    except RunInterrupted as exc:
        return exc.exit_code
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

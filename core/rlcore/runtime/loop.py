"""``run``: the per-rank training loop of an experiment.

Every rank builds the experiment's roles with their backends, iterates the data,
runs the executor over the dataflow graph, syncs followed weights, checks that every
metric is finite, logs, evaluates, checkpoints and resumes.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any

from rlcore.runtime import distributed
from rlcore.runtime.checkpoint import CheckpointError, CheckpointManager
from rlcore.runtime.experiment import Experiment, build_experiment, steps_note, total_steps_of
from rlcore.runtime.health import check_finite
from rlcore.runtime.roles import build_roles, sync_weights
from rlcore.runtime.seeding import seed_everything
from rlcore.runtime.step import Lookahead
from rlcore.runtime.stopping import RunInterrupted, StopOnSignal, signal_name


def run(
    experiment: str | type | Experiment,
    config: Any,
    run_dir: str | os.PathLike,
    resume: bool | str | os.PathLike = True,
) -> dict[str, Any]:
    """Train ``experiment`` on this rank; return the summary (same on every rank).

    ``resume``: True continues from the latest complete checkpoint in ``run_dir``
    if there is one; a path resumes from that checkpoint; False starts fresh.
    """
    exp = experiment if isinstance(experiment, Experiment) else build_experiment(experiment, config)
    return Run(exp, Path(run_dir)).train(resume)


class Run:
    """One run of an experiment on this rank: its roles, data, checkpoints and metrics."""

    def __init__(self, exp: Experiment, run_dir: Path):
        from rlcore.config import to_plain
        from rlcore.runtime.executor import Executor

        self.exp, self.run_dir, self.opts = exp, run_dir, exp.run_options()
        self.rank, world = distributed.init(self.opts.collective_timeout_s)
        exp.prepare(run_dir)
        seed_everything(self.opts.seed)  # after prepare, which may have trained a stage itself
        self.graph = exp.graph()
        tokenizer = exp.build_tokenizer()
        self.batches = exp.build_batches(exp.build_dataset(tokenizer))
        exp.load_eval_data(tokenizer)  # a bad eval file fails now, not at the first eval
        self.total = total_steps_of(self.opts, self.batches)
        note = steps_note(self.opts, self.batches)
        if note and self.rank == 0:
            print(f"note: {note}", flush=True)
        self.interfaces = exp.interfaces(self.graph.mfcs)
        self.handles = build_roles(exp, self.graph, self.interfaces, tokenizer, self.total)
        self.syncs = exp.weight_syncs()
        self.ckpt = CheckpointManager(run_dir, keep_last=self.opts.keep_last)
        for partial in self.ckpt.clean_partial():
            print(f"removed {partial}, a partial checkpoint left by an interrupted run")
        self.config = to_plain(exp.config) if exp.config is not None else {}
        self.executor = Executor(self.graph, self.handles, self.interfaces, self.rank, world)

    # ------------------------------------------------------------------ resume and save

    def _source(self, resume: bool | str | os.PathLike) -> Path | None:
        if resume is False:
            aside = self.ckpt.set_aside()
            if aside is not None:
                print(f"--no-resume: the earlier checkpoints are kept in {aside}")
            distributed.barrier()
            return None
        if resume is True:
            return self.ckpt.newest_intact()
        source = Path(resume)
        if not source.is_dir():
            raise CheckpointError(f"--resume {source}: no such checkpoint directory")
        self.ckpt.verify(source)
        return source

    def _restore(self, source: Path) -> int:
        state = self.ckpt.load(source, self.handles, config=self.config, verify=False)
        self.batches.load_state_dict(state["data"])
        for name, iface_state in state.get("interfaces", {}).items():
            if name not in self.interfaces:
                raise CheckpointError(f"{source} holds the state of MFC {name!r}, which this "
                                      "run's graph does not have; resume it with the code and "
                                      "config that wrote it, or pass --no-resume")
            self.interfaces[name].load_state_dict(iface_state)
        step = int(state["step"])
        if self.rank == 0:
            print(f"resuming from {source} (step {step} of {self.total})")
            if step >= self.total:
                print(f"note: nothing to train: the run has its {self.total} steps already; "
                      f"raise run.max_steps (now {self.opts.max_steps or 'unset'}) and, if it "
                      f"is capped, run.epochs (now {self.opts.epochs}) to extend it", flush=True)
        return step

    def unique_interfaces(self) -> dict[str, Any]:
        """Each interface object once, under the first MFC that uses it (MFCs share them)."""
        seen: dict[int, str] = {}
        for name, iface in self.interfaces.items():
            seen.setdefault(id(iface), name)
        return {name: self.interfaces[name] for name in seen.values()}

    def save(self, step: int) -> None:
        unique = self.unique_interfaces()

        def interface_files(role: str, path: Path) -> None:
            for m in self.graph.roles[role]:
                if m.name in unique:
                    unique[m.name].save(self.handles[role], str(path))

        state = {"data": self.data.state_dict(), "config": self.config,
                 "interfaces": {n: i.state_dict() for n, i in unique.items()}}
        self.ckpt.save(step, self.handles, state, extras=interface_files)

    # ------------------------------------------------------------------ the loop

    def evaluate(self, step: int) -> dict[str, float]:
        """The experiment's eval metrics (``eval/<name>``) and the seconds they took."""
        start = time.perf_counter()
        evals = self.exp.evaluate(step, self.handles)
        if not evals:
            return {}
        out = {f"eval/{k}": v for k, v in evals.items()}
        return distributed.mean_metrics({**out, "time/eval": time.perf_counter() - start})

    def train(self, resume: bool | str | os.PathLike) -> dict[str, Any]:
        from rlcore.runtime.metrics import MetricsLogger

        source = self._source(resume)
        step = self._restore(source) if source is not None else 0
        sync_weights(self.handles, self.syncs)
        logger = MetricsLogger(self.run_dir, self.rank, self.total, start_step=step,
                               progress=self.opts.progress,
                               flat_loss_steps=self.opts.flat_loss_steps,
                               loggers=self.opts.loggers,
                               headline=self.exp.headline_metrics(),
                               log_every_s=self.opts.log_every_s)
        logger.start(self.config)
        saved_at = step if source is not None else -1
        last_save = time.monotonic()
        opts = self.opts
        with StopOnSignal(self.rank) as stop:
            try:
                if opts.eval_every and opts.eval_at_start and step == 0:
                    before = self.evaluate(0)  # the starting point of every eval curve
                    if before:
                        logger.log(0, before)
                it = self.data = Lookahead(self.batches, self.total - step)
                while step < self.total:
                    try:
                        batch = next(it)
                    except StopIteration:
                        break
                    step += 1
                    metrics = distributed.mean_metrics(
                        self.executor.step(batch, experiment=self.exp, data=it))
                    sync_weights(self.handles, self.syncs)
                    if opts.eval_every and step % opts.eval_every == 0:
                        metrics.update(self.evaluate(step))
                    check_finite(step, metrics, self.ckpt.latest)
                    logger.log(step, metrics)
                    if self._save_due(step, last_save):
                        self.save(step)
                        saved_at, last_save = step, time.monotonic()
                    signum = stop.requested()  # the step boundary: every rank stops together
                    if signum is not None:
                        self._stop_at_boundary(signum, step, saved_at)
                if saved_at != step:
                    self.save(step)
            except RunInterrupted as exc:
                logger.finish("interrupted", error=str(exc))
                if exc.checkpoint is not None:
                    distributed.barrier()  # the summary is written before any rank exits
                stop.finished = True
                raise
            except BaseException as exc:
                logger.finish("failed", error="".join(traceback.format_exception_only(exc)).strip())
                raise
        summary = logger.finish("completed")
        if self.rank == 0:
            from rlcore.plots import curves_at_end

            problem = curves_at_end(self.run_dir)  # a warning at most: the run is done
            if problem:
                print(f"warning: {problem}", flush=True)
        latest = self.ckpt.latest()
        summary["checkpoint"] = str(latest) if latest else None
        return summary

    def _save_due(self, step: int, last_save: float) -> bool:
        """Whether step ``step`` is saved: every ``save_every`` steps, or ``save_every_s``
        after the last save by rank 0's clock (reduced, so every rank agrees)."""
        opts = self.opts
        if opts.save_every and step % opts.save_every == 0:
            return True
        if not opts.save_every_s or step >= self.total:  # the last step is saved anyway
            return False
        due = float(self.rank == 0 and time.monotonic() - last_save >= opts.save_every_s)
        return distributed.all_reduce([due], op="max")[0] > 0

    def _stop_at_boundary(self, signum: int, step: int, saved_at: int) -> None:
        """Save step ``step`` (every rank together) and raise :class:`RunInterrupted`."""
        if saved_at != step:
            self.save(step)
        latest = self.ckpt.latest()
        raise RunInterrupted(
            signum, f"interrupted by {signal_name(signum)} after step {step} of {self.total}; "
            f"checkpoint {latest}; run the same command again to resume", checkpoint=str(latest))

"""Conformance suite for experiment plugins: the config resolves, the graph validates, the
dataset feeds it, and one training step runs in this process.

Signature: subclass :class:`ExperimentConformance`, set ``experiment`` (a registered
name, ``module:Class`` or the class) and ``sets`` (``--set`` overrides for a tiny run)::

    from rlcore.testing.experiments import ExperimentConformance

    class TestMyAlgo(ExperimentConformance):
        experiment = "my-algo"
        sets = ["run.batch_size=4", "warm_start.sft_steps=0"]

``config(*more)`` resolves the config like the CLI; ``run_steps(tmp_path, n)`` runs ``n``
steps in process (a process group of one, real DeepSpeed on CPU) and returns the summary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import pytest


class ExperimentConformance:
    """Base of an experiment's conformance tests; set ``experiment`` and ``sets``."""

    experiment: ClassVar[str | type | None] = None
    sets: ClassVar[list[str]] = []

    def config(self, *more: str) -> Any:
        """The experiment's config from its defaults, ``sets`` and ``more``, as the CLI builds it."""
        from rlcore.config import resolve
        from rlcore.config.experiments import config_class_of, experiment_class

        if self.experiment is None:
            pytest.fail(f"{type(self).__name__} must set `experiment` (a registered name or class)")
        named = isinstance(self.experiment, str) and ":" not in self.experiment
        # A registered name keeps its own config (presets share one experiment class).
        cls = config_class_of(self.experiment if named else experiment_class(self.experiment))
        assert cls is not None, f"{self.experiment!r} names no config class"
        return resolve(cls, None, [*self.sets, *more])

    def build(self, *more: str) -> Any:
        from rlcore.runtime.experiment import build_experiment

        return build_experiment(self.experiment, self.config(*more))

    def run_steps(self, run_dir: Path, steps: int = 1, *more: str) -> dict[str, Any]:
        """Run ``steps`` training steps in this process; return the run summary."""
        from rlcore.runtime.loop import run

        exp = self.build(f"run.max_steps={steps}", "run.eval_every=0", "run.save_every=0",
                         "run.progress=false", *more)
        return run(exp, exp.config, run_dir, resume=False)

    # ------------------------------------------------------------------ the tests

    def test_config_has_defaults_and_help(self):
        """Every key has a default (the config builds bare) and every leaf key has help text."""
        from rlcore.config.schema import describe_fields

        rows = describe_fields(type(self.config()))
        missing = [key for key, _, _, help_text in rows if not help_text]
        assert not missing, f"config keys without help text (field metadata 'help'): {missing}"

    def test_graph_validates_and_interfaces_resolve(self):
        """The graph builds; its roles are declared; each MFC's interface builds from its args."""
        exp = self.build()
        graph = exp.graph()
        declared = {r.name for r in exp.roles()}
        assert {m.role for m in graph.mfcs} <= declared
        for mfc in graph.mfcs:
            exp.interface(mfc)

    def test_dataset_provides_the_graph_inputs(self):
        """A batch of the experiment's dataset holds every key the graph reads from the data."""
        from rlcore.runtime.seeding import seed_everything

        seed_everything(0)
        exp = self.build()
        graph = exp.graph()
        batch = next(iter(exp.build_batches(exp.build_dataset(exp.build_tokenizer()))))
        missing = set(graph.dataset_keys) - set(batch.keys)
        assert not missing, (f"the graph reads {sorted(missing)} from the data, but the dataset "
                             f"gives {sorted(batch.keys)}")

    def test_one_step_runs_in_process(self, tmp_path, one_torch_thread):
        """One step runs to completion, with finite metrics logged."""
        from rlcore.runtime.metrics import read_metrics

        summary = self.run_steps(tmp_path, 1)
        assert summary["status"] == "completed" and summary["steps"] == 1
        records = [r for r in read_metrics(tmp_path) if r["step"] == 1]
        assert records, "no metrics logged for step 1"
        bad = {k: v for k, v in records[-1].items() if isinstance(v, float) and not math.isfinite(v)}
        assert not bad, f"non-finite metrics at step 1: {bad}"
